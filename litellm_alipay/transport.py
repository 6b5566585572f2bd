"""HTTP transports: one pooled client per gateway and event loop (and one sync), reused across calls.

A transport has one job and one method, ``send``: bytes out, status + headers + bytes (or a byte stream)
back, failures translated into the transport errors of ``errors.py`` so the adapter never sees aiohttp
or httpx exceptions. The async default is aiohttp, which costs several times less client CPU per
request than httpx here (see ``bench/``); httpx is kept for the sync path, for HTTP/2, and for respx.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from .errors import ConnectionDroppedError, ConnectTimeoutError, ReadTimeoutError, TransportError


@dataclass(slots=True)
class HttpRequest:
    url: str
    content: bytes
    headers: Mapping[str, str]
    read_timeout: float
    connect_timeout: float
    method: str = "POST"

    def __repr__(self) -> str:
        """Path only: the body carries ``sign`` and tokens, the headers a v3 signature."""
        return f"HttpRequest({self.method} {self.url.partition('?')[0]}, {len(self.content)} bytes)"


@dataclass(slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    content: bytes


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


def _peer_closed(sock: socket.socket | None) -> bool:
    """True when a pooled connection's peer has already closed it (EOF or reset pending).

    A one-byte ``MSG_PEEK`` on a duplicate of the descriptor: asyncio hides ``recv`` on its sockets,
    and the event loop may not have seen the gateway's FIN yet when the pool hands the connection out.
    """
    if sock is None:
        return False
    try:
        with socket.socket(fileno=os.dup(sock.fileno())) as dup:
            return dup.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False  # nothing pending: alive
    except OSError:
        return True


def _checked_connector(**kwargs: Any):
    """A TCPConnector that never sends on a kept-alive connection the gateway has already closed.

    This is the one retry we own: the request moves to a fresh connection *before any byte is sent*
    (httpcore does the same check for the sync path). A connection that fails after the request went
    out is never retried here: the gateway may have acted on it, and that is the Router's call.
    """
    import aiohttp

    class CheckedConnector(aiohttp.TCPConnector):
        async def connect(self, req, traces, timeout):  # type: ignore[no-untyped-def]
            for _ in range((self.limit or 100) + 1):  # each pooled connection at most once, then a new one
                conn = await super().connect(req, traces, timeout)
                transport = conn.transport
                if transport is None or not _peer_closed(transport.get_extra_info("socket")):
                    return conn
                conn.close()  # dead pooled connection: drop it and take another
            raise aiohttp.ServerDisconnectedError("every pooled connection had been closed by the gateway")

    return CheckedConnector(**kwargs)


class AiohttpTransport:
    """Async transport over one ``aiohttp.ClientSession`` per event loop."""

    def __init__(self, pool_size: int = 30, keepalive_timeout: float = 4.0) -> None:
        self._pool_size = pool_size
        self._keepalive = keepalive_timeout
        self._sessions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _session(self):
        import aiohttp

        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            connector = _checked_connector(
                limit=self._pool_size, keepalive_timeout=self._keepalive, ttl_dns_cache=300
            )
            session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=True
            )
            self._sessions[loop] = session
        return session

    async def send(self, request: HttpRequest, *, stream: bool = False) -> HttpResponse | _AiohttpStream:
        import aiohttp

        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=request.connect_timeout, sock_read=request.read_timeout
        )
        try:
            response = await self._session().request(
                request.method, request.url, data=request.content, headers=dict(request.headers),
                timeout=timeout,
            )
            if stream:
                return _AiohttpStream(response)
            async with response:
                return HttpResponse(response.status, response.headers, await response.read())
        except aiohttp.ConnectionTimeoutError:
            raise ConnectTimeoutError("no connection to the gateway within connect_timeout", sent=False) from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise ReadTimeoutError("the gateway did not answer within the read timeout") from None
        except aiohttp.ClientConnectorError as exc:
            raise TransportError(f"cannot connect to the gateway: {exc.os_error}", sent=False) from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError) as exc:
            # After the request went out the gateway may have acted on it: the Router's to retry
            # (with the same out_request_no), never ours.
            raise ConnectionDroppedError(f"the gateway closed the connection: {type(exc).__name__}") from None
        except aiohttp.ClientError as exc:
            raise ConnectionDroppedError(f"HTTP exchange failed: {type(exc).__name__}") from None

    async def aclose(self) -> None:
        for session in list(self._sessions.values()):
            await session.close()

    async def aclose_loop(self) -> None:
        """Close only the running loop's session (other loops' sessions belong to them)."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()


# -------------------------------------------------------------------------------------------- httpx
class SyncByteStream:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers = response.headers

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._response.iter_raw()
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
            async for chunk in self._response.aiter_raw():
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
        pool=request.connect_timeout,
    )


def _map_httpx(exc: httpx.HTTPError) -> TransportError:
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return ConnectTimeoutError("no connection to the gateway within connect_timeout", sent=False)
    if isinstance(exc, httpx.TimeoutException):
        return ReadTimeoutError("the gateway did not answer within the read timeout")
    if isinstance(exc, httpx.ConnectError):
        return TransportError(f"cannot connect to the gateway: {exc}", sent=False)
    return ConnectionDroppedError(f"the gateway closed the connection: {type(exc).__name__}")


class HttpxTransport:
    """Sync and async transport over httpx (HTTP/2 optional); respx can intercept it."""

    def __init__(self, pool_size: int = 30, http2: bool = False) -> None:
        limits = httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size,
                              keepalive_expiry=4.0)
        self._limits = limits
        self._http2 = http2
        self._sync: httpx.Client | None = None
        self._lock = threading.Lock()
        self._async: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _client(self) -> httpx.Client:
        if self._sync is None:
            with self._lock:
                if self._sync is None:
                    self._sync = httpx.Client(limits=self._limits, http2=self._http2)
        return self._sync

    def _aclient(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(limits=self._limits, http2=self._http2)
            self._async[loop] = client
        return client

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
            found = _transports.setdefault(key, factory())
    return found


def async_transport(kind: str, pool_size: int, http2: bool) -> AsyncTransport:
    """The shared async transport for this configuration (one client per event loop inside)."""
    if kind == "aiohttp" and not http2:
        return _cached(("aiohttp", pool_size), lambda: AiohttpTransport(pool_size))  # type: ignore[return-value]
    inner = _cached(("httpx", pool_size, http2), lambda: HttpxTransport(pool_size, http2))
    return _cached(("httpx-async", pool_size, http2), lambda: _HttpxAsyncAdapter(inner))  # type: ignore[return-value]


async def aclose_loop_transports() -> None:
    """Close every shared transport's pooled connections of the running loop, before that loop ends
    (a private event-loop thread shutting down)."""
    for transport in list(_transports.values()):
        if isinstance(transport, AiohttpTransport):
            await transport.aclose_loop()
        elif isinstance(transport, HttpxTransport):
            client = transport._async.pop(asyncio.get_running_loop(), None)
            if client is not None:
                await client.aclose()


def sync_transport(pool_size: int, http2: bool) -> HttpxTransport:
    return _cached(("httpx", pool_size, http2), lambda: HttpxTransport(pool_size, http2))  # type: ignore[return-value]
