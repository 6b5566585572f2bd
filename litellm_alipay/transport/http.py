"""HTTP transports: one pooled client per gateway and event loop (and one sync), reused across calls.

A transport has one job and one method, ``send``: bytes out, status + headers + bytes (or a byte stream)
back, failures translated into the transport errors of ``errors.py`` so the adapter never sees aiohttp
or httpx exceptions. The async default is aiohttp, which costs several times less client CPU per
request than httpx here (see ``bench/``); httpx is kept for the sync path, for HTTP/2, and for respx.

Both transports behave alike where an operator can tell:

- ``pool_size`` is the keep-alive pool, not a concurrency cap: a burst beyond it opens more connections
  (nothing queues locally, so no local wait can ever look like a gateway timeout), and once the burst
  is over at most ``pool_size`` idle connections stay open.
- Proxies and TLS verification come from ``egress``, as LiteLLM's own clients have them. Clients read
  the environment when made, so the registry keys transports on its values.
- A client per event loop is closed when its loop shuts down (``loop_resources``).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, Protocol

import httpx

from ..errors import (
    ConnectionDroppedError,
    ConnectTimeoutError,
    LocalOverloadError,
    ReadTimeoutError,
    TransportError,
)
from .base import (  # noqa: F401  (HttpRequest, HttpResponse and the helpers are imported from here too)
    HttpRequest,
    HttpResponse,
    _certificate_error,
    _local_failure,
    _peer_closed,
    _untrusted,
    origin_of,
)
from .egress import client_env, ssl_config
from .loop_resources import ClientOwner, PerLoop, register_sync


class AsyncByteStream(Protocol):
    status: int
    headers: Mapping[str, str]

    def __aiter__(self) -> AsyncIterator[bytes]: ...
    async def aclose(self) -> None: ...


class AsyncTransport(Protocol):
    async def send(self, request: HttpRequest, *, stream: bool = False) -> HttpResponse | AsyncByteStream: ...


class SyncTransport(Protocol):
    def send(self, request: HttpRequest, *, stream: bool = False) -> HttpResponse | SyncByteStream: ...


# ------------------------------------------------------------------------------------------ aiohttp
class _AiohttpStream:
    def __init__(self, response) -> None:  # aiohttp.ClientResponse
        self._response = response
        self.status = response.status
        self.headers = response.headers

    async def __aiter__(self) -> AsyncIterator[bytes]:
        import aiohttp

        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise ReadTimeoutError("the gateway stalled mid-stream past the read timeout") from None
        except aiohttp.ClientError as exc:
            raise ConnectionDroppedError(f"the stream broke off: {type(exc).__name__}") from None

    async def aclose(self) -> None:
        self._response.release()
        self._response.close()


def _checked_connector(keep: int, **kwargs: Any):
    """A TCPConnector that never sends on a kept-alive connection the gateway has already closed, opens
    as many connections as a burst needs, and keeps at most ``keep`` of them idle afterwards.

    The liveness check is the one retry we own: the request moves to a fresh connection *before any
    byte is sent* (httpcore does the same check for the sync path). A connection that fails after the
    request went out is never retried here: the gateway may have acted on it, and that is the Router's.
    aiohttp has no "keep-alive pool smaller than the connection limit" knob (``limit`` caps concurrency
    and queues the rest), so the idle list is trimmed on release.
    """
    import aiohttp

    class CheckedConnector(aiohttp.TCPConnector):
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            # Connections handed out before: only these are checked (a fresh TLS 1.3 connection has the
            # server's session tickets pending, which is no farewell).
            self._used: weakref.WeakSet = weakref.WeakSet()

        async def connect(self, req, traces, timeout):  # type: ignore[no-untyped-def]
            used = self._used
            for _ in range(keep + 1):  # each pooled connection at most once, then a new one
                conn = await super().connect(req, traces, timeout)
                protocol, transport = conn.protocol, conn.transport
                if protocol not in used:
                    used.add(protocol)
                    return conn
                if transport is None or not _peer_closed(transport.get_extra_info("socket")):
                    return conn
                conn.close()  # dead pooled connection: drop it and take another
            raise aiohttp.ServerDisconnectedError("every pooled connection had been closed by the gateway")

        def _release(self, key, protocol, *args, **kwargs):  # type: ignore[no-untyped-def]
            super()._release(key, protocol, *args, **kwargs)
            idle = self._conns.get(key)
            while idle is not None and len(idle) > keep:
                oldest = idle[0][0]
                del idle[0]
                oldest.close()  # beyond the keep-alive pool: the burst's extra connection ends here

    return CheckedConnector(limit=0, limit_per_host=0, **kwargs)


class AiohttpTransport:
    """Async transport over one ``aiohttp.ClientSession`` per event loop, closed with its loop."""

    def __init__(self, pool_size: int = 30, keepalive_timeout: float = 4.0,
                 ssl_verify: bool | str | None = None) -> None:
        self._pool_size = pool_size
        self._keepalive = keepalive_timeout
        self._ssl = ssl_config(ssl_verify)
        self._sessions = PerLoop(self._new_session, _close_session, lambda session: session.closed)
        self._proxies: dict[str, tuple[Any, Any]] = {}

    def _new_session(self):
        import aiohttp

        connector = _checked_connector(
            self._pool_size, keepalive_timeout=self._keepalive, ttl_dns_cache=300, ssl=self._ssl,
        )
        return aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=True,
        )

    def _proxy(self, url: str) -> tuple[Any, Any]:
        """``(proxy, proxy_auth)`` for ``url`` from the environment, once per origin (``proxy_for``)."""
        return self.proxy_for(origin_of(url))

    def proxy_for(self, origin: str) -> tuple[Any, Any]:
        """``(proxy, proxy_auth)`` for an origin (``origin_of``) from the environment, looked up once.

        Not ``trust_env=True``: that costs two thread hops per request (netrc and proxy lookups) and
        would add a netrc ``Authorization`` to gateway calls. The registry keys transports on the proxy
        variables, so a cached answer stays right.
        """
        found = self._proxies.get(origin)
        if found is None:
            from aiohttp.helpers import get_env_proxy_for_url
            from yarl import URL

            try:
                found = get_env_proxy_for_url(URL(origin))
            except LookupError:  # no proxy for this scheme, or NO_PROXY bypasses the host
                found = (None, None)
            self._proxies[origin] = found
        return found

    def _session(self):
        return self._sessions.get()

    async def send(self, request: HttpRequest, *, stream: bool = False) -> HttpResponse | _AiohttpStream:
        import aiohttp

        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=request.connect_timeout, sock_read=request.read_timeout
        )
        proxy, proxy_auth = self._proxy(request.url)
        try:
            response = await self._session().request(
                request.method, request.url, data=request.content, headers=dict(request.headers),
                timeout=timeout, proxy=proxy, proxy_auth=proxy_auth,
            )
            if stream:
                return _AiohttpStream(response)
            async with response:
                return HttpResponse(response.status, response.headers, await response.read())
        except aiohttp.ConnectionTimeoutError:
            raise ConnectTimeoutError("no connection to the gateway within connect_timeout", sent=False) from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise ReadTimeoutError("the gateway did not answer within the read timeout") from None
        except aiohttp.ClientConnectorCertificateError as exc:
            raise _untrusted(_certificate_error(exc.certificate_error)) from None
        except aiohttp.ClientConnectorError as exc:
            if _local_failure(exc.os_error):
                raise LocalOverloadError(f"no socket for a new connection: {exc.os_error}") from None
            if isinstance(exc, aiohttp.ClientProxyConnectionError):
                raise TransportError(f"cannot connect to the HTTP proxy: {exc.os_error}", sent=False) from None
            raise TransportError(f"cannot connect to the gateway: {exc.os_error}", sent=False) from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError) as exc:
            # After the request went out the gateway may have acted on it: the Router's to retry
            # (with the same out_request_no), never ours.
            raise ConnectionDroppedError(f"the gateway closed the connection: {type(exc).__name__}") from None
        except aiohttp.ClientError as exc:
            raise ConnectionDroppedError(f"HTTP exchange failed: {type(exc).__name__}") from None

    async def aclose(self) -> None:
        """Close this loop's session now (the loop's shutdown does it otherwise)."""
        await self._sessions.aclose()


async def _close_session(session: Any) -> None:
    await session.close()


# -------------------------------------------------------------------------------------------- httpx
class SyncByteStream:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers = response.headers

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._response.iter_bytes()  # decoded: we accept gzip
        except httpx.TimeoutException:
            raise ReadTimeoutError("the gateway stalled mid-stream past the read timeout") from None
        except httpx.HTTPError as exc:
            raise ConnectionDroppedError(f"the stream broke off: {type(exc).__name__}") from None

    def close(self) -> None:
        self._response.close()


class _HttpxStreamAsync:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers = response.headers

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes():
                yield chunk
        except httpx.TimeoutException:
            raise ReadTimeoutError("the gateway stalled mid-stream past the read timeout") from None
        except httpx.HTTPError as exc:
            raise ConnectionDroppedError(f"the stream broke off: {type(exc).__name__}") from None

    async def aclose(self) -> None:
        await self._response.aclose()


def _httpx_timeout(request: HttpRequest) -> httpx.Timeout:
    return httpx.Timeout(
        connect=request.connect_timeout, read=request.read_timeout, write=request.read_timeout,
        pool=request.read_timeout,
    )


def _map_httpx(exc: httpx.HTTPError) -> TransportError:
    if isinstance(exc, httpx.PoolTimeout):  # local queueing, never the gateway's fault
        return LocalOverloadError("no free connection in this process's pool within the read timeout")
    if isinstance(exc, httpx.ConnectTimeout):
        return ConnectTimeoutError("no connection to the gateway within connect_timeout", sent=False)
    if isinstance(exc, httpx.TimeoutException):
        return ReadTimeoutError("the gateway did not answer within the read timeout")
    if isinstance(exc, httpx.ConnectError | httpx.ProxyError):
        certificate = _certificate_error(exc)
        if certificate is not None:
            return _untrusted(certificate)
        if _local_failure(exc):
            return LocalOverloadError(f"no socket for a new connection: {exc}")
        where = "HTTP proxy" if isinstance(exc, httpx.ProxyError) else "gateway"
        return TransportError(f"cannot connect to the {where}: {exc}", sent=False)
    return ConnectionDroppedError(f"the gateway closed the connection: {type(exc).__name__}")


class HttpxTransport(ClientOwner):
    """Sync and async transport over httpx (HTTP/2 optional); respx can intercept it.

    ``max_connections=None``: a burst opens what it needs; ``pool_size`` bounds the idle connections.
    """

    def __init__(self, pool_size: int = 30, http2: bool = False, ssl_verify: bool | str | None = None) -> None:
        self._limits = httpx.Limits(max_connections=None, max_keepalive_connections=pool_size,
                                    keepalive_expiry=4.0)
        self._http2 = http2
        self._verify = ssl_config(ssl_verify)
        self._sync: httpx.Client | None = None
        self._lock = threading.Lock()
        self._async = PerLoop(
            lambda: httpx.AsyncClient(limits=self._limits, http2=self._http2, verify=self._verify, trust_env=True),
            _close_httpx, lambda client: client.is_closed,
        )
        register_sync(self)

    def _client(self) -> httpx.Client:
        if self._sync is None or self._sync.is_closed:
            with self._lock:
                if self._sync is None or self._sync.is_closed:
                    self._sync = httpx.Client(limits=self._limits, http2=self._http2, verify=self._verify,
                                              trust_env=True)
        return self._sync

    def _aclient(self) -> httpx.AsyncClient:
        return self._async.get()


    def send(self, request: HttpRequest, *, stream: bool = False) -> HttpResponse | SyncByteStream:
        client = self._client()
        built = client.build_request(
            request.method, request.url, content=request.content, headers=request.headers,
            timeout=_httpx_timeout(request),
        )
        try:
            response = client.send(built, stream=stream)
        except httpx.HTTPError as exc:
            raise _map_httpx(exc) from None
        if stream:
            return SyncByteStream(response)
        return HttpResponse(response.status_code, response.headers, response.content)

    async def asend(self, request: HttpRequest, *, stream: bool = False) -> HttpResponse | _HttpxStreamAsync:
        client = self._aclient()
        built = client.build_request(
            request.method, request.url, content=request.content, headers=request.headers,
            timeout=_httpx_timeout(request),
        )
        try:
            response = await client.send(built, stream=stream)
        except httpx.HTTPError as exc:
            raise _map_httpx(exc) from None
        if stream:
            return _HttpxStreamAsync(response)
        return HttpResponse(response.status_code, response.headers, response.content)


async def _close_httpx(client: httpx.AsyncClient) -> None:
    await client.aclose()


class _HttpxAsyncAdapter:
    """Presents ``HttpxTransport.asend`` as an ``AsyncTransport``."""

    def __init__(self, inner: HttpxTransport) -> None:
        self._inner = inner

    async def send(self, request: HttpRequest, *, stream: bool = False):
        return await self._inner.asend(request, stream=stream)


# ----------------------------------------------------------------------------------------- registry
_transports: dict[tuple, object] = {}
_registry_lock = threading.Lock()


def _cached(key: tuple, factory):
    found = _transports.get(key)
    if found is None:
        with _registry_lock:
            found = _transports.get(key)
            if found is None:
                found = _transports[key] = factory()
    return found


def async_transport(kind: str, pool_size: int, http2: bool, ssl_verify: bool | str | None = None) -> AsyncTransport:
    """The shared async transport for this configuration (one client per event loop inside)."""
    env = client_env()
    if kind == "h1" and not http2:
        key = ("h1", pool_size, ssl_verify, env)
        found = _transports.get(key)
        if found is not None:
            return found  # type: ignore[return-value]
        from .h1 import H1Transport

        fallback = async_transport("aiohttp", pool_size, False, ssl_verify)  # streams, proxied origins
        return _cached(key, lambda: H1Transport(pool_size, ssl_verify, fallback))  # type: ignore[return-value]
    if kind == "aiohttp" and not http2:
        return _cached(("aiohttp", pool_size, ssl_verify, env),  # type: ignore[return-value]
                       lambda: AiohttpTransport(pool_size, ssl_verify=ssl_verify))
    inner = sync_transport(pool_size, http2, ssl_verify)
    return _cached(("httpx-async", pool_size, http2, ssl_verify, env),  # type: ignore[return-value]
                   lambda: _HttpxAsyncAdapter(inner))


async def aclose_loop_transports() -> None:
    """Close every shared transport's clients of the running loop, before that loop ends (a private
    event-loop thread shutting down); other loops' clients belong to them."""
    from .h1 import H1Transport

    for transport in list(_transports.values()):
        if isinstance(transport, (AiohttpTransport, H1Transport)):
            await transport.aclose()
        elif isinstance(transport, HttpxTransport):
            await transport._async.aclose()


def sync_transport(pool_size: int, http2: bool, ssl_verify: bool | str | None = None) -> HttpxTransport:
    """The shared httpx transport for this configuration (sync client, and async clients per loop)."""
    return _cached(("httpx", pool_size, http2, ssl_verify, client_env()),  # type: ignore[return-value]
                   lambda: HttpxTransport(pool_size, http2, ssl_verify=ssl_verify))
