"""The one HTTP stack: aiohttp, one pooled session per gateway configuration and event loop.

A transport has one job and one method, ``send``: bytes out, status + headers + bytes (or a byte stream)
back, failures translated into the transport errors of ``errors.py`` so the adapter never sees aiohttp
exceptions. Plain calls and streams share it; the sync path drives it on its own loop
(``sync_driver.py``). Why aiohttp and not httpx (plain, or over LiteLLM's aiohttp transport): measured in
``bench/`` (transport rows), httpx's request/response machinery costs several times aiohttp's client CPU
per exchange, and the httpx-over-aiohttp transport pays both; the provider's own HTTP/1.1 client
(``h1.py``, removed) saved a little more but was security-critical code of our own.

What leaves and what comes back, alike on every call:

- Redirects are never followed (``allow_redirects=False``): a 3xx is ``RedirectRefusedError`` naming the
  ``Location`` host, and nothing is sent there.
- TLS and proxies come from ``egress`` only (LiteLLM's resolution). Clients read the environment when
  made, so the registry keys transports on its values.
- Every response is bounded by the deployment's ``ResponseLimits`` (``limits.py``): header line size and
  count in aiohttp's parser, body on the wire and as it inflates (``decode.py``), a stream's total.
  A response's body is handed to the caller and not kept: the connection goes back to the pool empty.
- ``pool_size`` is the keep-alive pool, not a concurrency cap: a burst beyond it opens more connections
  (nothing queues locally, so no local wait can look like a gateway timeout), and a connection opened
  while ``pool_size`` are already open is closed after its one exchange (``Connection: close``).
- A pooled connection the gateway has closed is never written to (``_peer_closed``), and a client per
  event loop is closed when its loop shuts down (``loop_resources``).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from ..errors import (
    ConnectionDroppedError,
    ConnectTimeoutError,
    LocalOverloadError,
    ReadTimeoutError,
    RedirectRefusedError,
    ResponseLimitError,
    TransportError,
)
from .base import HttpRequest, HttpResponse, _certificate_error, _local_failure, _peer_closed, _untrusted, origin_of
from .decode import ACCEPT_ENCODING, BoundedBody
from .egress import client_env, proxy_for, ssl_config
from .limits import DEFAULT_LIMITS, ResponseLimits
from .loop_resources import PerLoop

__all__ = ["AiohttpTransport", "AsyncByteStream", "AsyncTransport", "HttpRequest", "HttpResponse",
           "aclose_loop_transports", "async_transport"]

#: Seconds an idle pooled connection is kept (aiohttp's default): servers drop idle connections on their
#: own schedule, and a request must never race that.
KEEPALIVE_SECONDS = 4.0
#: Read size for bodies: aiohttp hands over what has arrived, at most this much per step.
_READ = 65536


class AsyncByteStream(Protocol):
    status: int
    headers: Mapping[str, str]

    def __aiter__(self) -> AsyncIterator[bytes]: ...
    async def aclose(self) -> None: ...


class AsyncTransport(Protocol):
    async def send(self, request: HttpRequest, *, stream: bool = False) -> HttpResponse | AsyncByteStream: ...


class _Stream:
    """A streamed answer: decoded chunks as they arrive, its total bounded by ``max_stream_body``."""

    def __init__(self, response: Any, limits: ResponseLimits) -> None:  # aiohttp.ClientResponse
        self._response = response
        self.status = response.status
        self.headers = response.headers
        self._body = BoundedBody(response.headers.get("Content-Encoding"), limits.max_stream_body,
                                 "max_stream_body", limits.max_stream_body, "max_stream_body")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        import aiohttp

        try:
            async for chunk in self._response.content.iter_chunked(_READ):
                decoded = self._body.feed(chunk)
                if decoded:
                    yield decoded
            tail = self._body.finish()
            if tail:
                yield tail
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise ReadTimeoutError("the gateway stalled mid-stream past the read timeout") from None
        except aiohttp.ClientError as exc:
            raise ConnectionDroppedError(f"the stream broke off: {type(exc).__name__}") from None

    async def aclose(self) -> None:
        self._response.close()  # an unfinished stream's connection is not reused


def _checked_connector(keep: int, **kwargs: Any) -> Any:
    """A TCPConnector that never sends on a kept-alive connection the gateway has already closed, opens
    as many connections as a burst needs, and keeps at most ``keep`` of them afterwards.

    Public API only (``connect``, the connection's ``protocol``/``transport``, the request's headers):
    the liveness check is the one retry we own — the request moves to a fresh connection *before any byte
    is sent*. A connection that fails after the request went out is never retried here: the gateway may
    have acted on it, and that is the Router's. aiohttp has no "keep-alive pool smaller than the
    connection limit" knob (``limit`` caps concurrency and queues the rest), so a connection opened while
    ``keep`` are already open is marked to close after its exchange (the protocol's ``force_close``, and
    ``Connection: close`` so the gateway knows too).
    """
    import aiohttp

    class CheckedConnector(aiohttp.TCPConnector):
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            # Connections handed out before: only these are checked (a fresh TLS 1.3 connection has the
            # server's session tickets pending, which is no farewell). Kept: the pooled ones.
            self._handed: weakref.WeakSet = weakref.WeakSet()
            self._kept: weakref.WeakSet = weakref.WeakSet()

        async def connect(self, req, traces, timeout):  # type: ignore[no-untyped-def]
            for _ in range(keep + 1):  # each pooled connection at most once, then a new one
                conn = await super().connect(req, traces, timeout)
                protocol, transport = conn.protocol, conn.transport
                if protocol not in self._handed:
                    self._handed.add(protocol)
                    if sum(1 for p in self._kept if _open(p)) < keep:
                        self._kept.add(protocol)
                    else:  # beyond the keep-alive pool: one exchange, and both ends know it
                        req.headers["Connection"] = "close"
                        protocol.force_close()
                    return conn
                if transport is None or not _peer_closed(transport.get_extra_info("socket")):
                    return conn
                conn.close()  # dead pooled connection: drop it and take another
            raise aiohttp.ServerDisconnectedError("every pooled connection had been closed by the gateway")

    return CheckedConnector(limit=0, limit_per_host=0, **kwargs)


def _open(protocol: Any) -> bool:
    transport = getattr(protocol, "transport", None)
    return transport is not None and not transport.is_closing()


class AiohttpTransport:
    """Async transport over one ``aiohttp.ClientSession`` per event loop, closed with its loop."""

    def __init__(self, pool_size: int = 30, ssl_verify: bool | str | None = None,
                 limits: ResponseLimits = DEFAULT_LIMITS, keepalive_timeout: float = KEEPALIVE_SECONDS) -> None:
        self._pool_size = pool_size
        self._keepalive = keepalive_timeout
        self._ssl = ssl_config(ssl_verify)
        self._limits = limits
        self._sessions = PerLoop(self._new_session, _close_session, lambda session: session.closed)
        self._proxies: dict[str, str | None] = {}

    def _new_session(self) -> Any:
        import aiohttp

        limits = self._limits
        connector = _checked_connector(
            self._pool_size, keepalive_timeout=self._keepalive, ttl_dns_cache=300, ssl=self._ssl,
        )
        return aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
            max_line_size=limits.max_response_header_size, max_field_size=limits.max_response_header_size,
            max_headers=limits.max_response_headers, trust_env=False,  # proxies: egress.proxy_for, no netrc
        )

    def _proxy(self, url: str) -> str | None:
        """The proxy for ``url``'s origin, looked up once (the registry keys transports on the variables)."""
        origin = origin_of(url)
        if origin not in self._proxies:
            self._proxies[origin] = proxy_for(origin)
        return self._proxies[origin]

    async def send(self, request: HttpRequest, *, stream: bool = False) -> HttpResponse | _Stream:
        import aiohttp

        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=request.connect_timeout, sock_read=request.read_timeout
        )
        headers = dict(request.headers)
        headers["Accept-Encoding"] = ACCEPT_ENCODING
        limits = self._limits
        try:
            response = await self._sessions.get().request(
                request.method, request.url, data=request.content, headers=headers, timeout=timeout,
                proxy=self._proxy(request.url), allow_redirects=False,
            )
            if 300 <= response.status < 400 and response.status != 304:
                response.close()
                location = response.headers.get("Location", "")
                raise RedirectRefusedError(response.status, _host_of(location, request.url))
            if stream:
                return _Stream(response, limits)
            try:
                content = await _read_body(response, limits)
            except BaseException:
                response.close()  # unread bytes: the connection is not reused
                raise
            response.release()
            return HttpResponse(response.status, response.headers, content)
        except TransportError:
            raise
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
        except aiohttp.ClientResponseError as exc:
            if exc.status == 400 and _header_overflow(exc):
                raise _header_limit(exc, limits) from None
            raise ConnectionDroppedError(f"HTTP exchange failed: {type(exc).__name__}") from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError) as exc:
            # After the request went out the gateway may have acted on it: the Router's to retry
            # (with the same out_request_no), never ours.
            raise ConnectionDroppedError(f"the gateway closed the connection: {type(exc).__name__}") from None
        except aiohttp.ClientError as exc:
            raise ConnectionDroppedError(f"HTTP exchange failed: {type(exc).__name__}") from None

    async def aclose(self) -> None:
        """Close this loop's session now (the loop's shutdown does it otherwise)."""
        await self._sessions.aclose()


async def _read_body(response: Any, limits: ResponseLimits) -> bytes:
    """The whole body, decoded, refused at ``max_response_body`` (wire) or ``max_decompressed_body``."""
    length = response.content_length
    if length is not None and length > limits.max_response_body:
        raise ResponseLimitError("max_response_body", limits.max_response_body,
                                 f"the answer's Content-Length {length}")
    body = BoundedBody(response.headers.get("Content-Encoding"), limits.max_response_body, "max_response_body",
                       limits.max_decompressed_body, "max_decompressed_body")
    parts = [body.feed(chunk) async for chunk in response.content.iter_chunked(_READ)]
    parts.append(body.finish())
    return b"".join(parts)


def _header_overflow(exc: Exception) -> bool:
    text = str(exc).lower()  # aiohttp's parser: "Too many headers received", "Got more than N bytes when reading"
    return "too many headers" in text or "got more than" in text


def _header_limit(exc: Exception, limits: ResponseLimits) -> ResponseLimitError:
    """aiohttp's parser refused the header block: name the setting that refused it."""
    text = str(exc).lower()
    if "too many headers" in text:
        return ResponseLimitError("max_response_headers", limits.max_response_headers, "the answer's header count")
    return ResponseLimitError("max_response_header_size", limits.max_response_header_size,
                              "a header line of the answer")


def _host_of(location: str, base: str) -> str:
    """The host a ``Location`` points to (a relative one points back to the request's own host)."""
    from urllib.parse import urljoin, urlsplit

    try:
        return urlsplit(urljoin(base, location)).hostname or ""
    except ValueError:
        return ""


async def _close_session(session: Any) -> None:
    await session.close()


# ----------------------------------------------------------------------------------------- registry
_transports: dict[tuple, AiohttpTransport] = {}
_registry_lock = threading.Lock()


def async_transport(pool_size: int, ssl_verify: bool | str | None = None,
                    limits: ResponseLimits = DEFAULT_LIMITS) -> AiohttpTransport:
    """The shared transport for this configuration (one aiohttp session per event loop inside)."""
    key = (pool_size, ssl_verify, limits, client_env())
    found = _transports.get(key)
    if found is None:
        with _registry_lock:
            found = _transports.get(key)
            if found is None:
                found = _transports[key] = AiohttpTransport(pool_size, ssl_verify, limits)
    return found


def transport_for(settings: Any) -> AiohttpTransport:
    """The shared transport a settings object (gateway, Ant Ling, payments) asks for."""
    return async_transport(settings.pool_size, getattr(settings, "ssl_verify", None),
                           getattr(settings, "limits", DEFAULT_LIMITS))


async def aclose_loop_transports() -> None:
    """Close every shared transport's session of the running loop, before that loop ends (a private
    event-loop thread shutting down); other loops' sessions belong to them."""
    for transport in list(_transports.values()):
        await transport.aclose()
