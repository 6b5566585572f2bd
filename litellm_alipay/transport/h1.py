"""The default async transport: one HTTP/1.1 request/response on the event loop's own sockets.

Why not aiohttp for every call: measured in ``bench/`` on the gateway's chat call, aiohttp's client
(session, connector, timers, response object, stream reader) costs ~0.2 ms of client CPU per request
above a bare exchange on an ``asyncio.Protocol`` — more than everything else the provider does apart
from the RSA signature. The gateway's calls are the simplest HTTP there is: one POST, one answer with
a length or chunks. So those go here; the message is parsed by ``httptools`` (llhttp, the parser
Node.js and uvicorn use), never by hand. What is not that simple stays with aiohttp: streams, origins
reached through an HTTP proxy, and ``transport: aiohttp`` for whoever wants it everywhere.

Behaviour an operator can tell from the aiohttp transport's, kept the same: ``pool_size`` idle
connections per origin kept alive (a burst opens as many as it needs), a pooled connection the gateway
has closed is never written to (``_peer_closed``), TLS from ``egress.ssl_config``, one pool per event
loop closed with its loop, and the same transport errors (``sent=False`` only when nothing can have
left this process).
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from typing import Any

import httptools
from multidict import CIMultiDict

from ..errors import ConnectionDroppedError, ConnectTimeoutError, LocalOverloadError, ReadTimeoutError, TransportError
from .egress import ssl_config
from .loop_resources import PerLoop

#: A pooled connection idle longer than this is closed rather than reused (aiohttp's keep-alive default
#: is 4 s too): servers drop idle connections on their own schedule, and a request must never race that.
IDLE_SECONDS = 4.0
_DEFAULT_PORTS = {"http": 80, "https": 443}


class _Origin:
    """Where a URL's requests go, parsed once per origin (``scheme://host:port``)."""

    __slots__ = ("host", "host_header", "port", "prefix", "tls")

    def __init__(self, url: str) -> None:
        scheme, _, rest = url.partition("://")
        netloc = rest.split("/", 1)[0].split("?", 1)[0]
        self.prefix = f"{scheme}://{netloc}"
        scheme = scheme.lower()
        if scheme not in _DEFAULT_PORTS or not netloc or "@" in netloc:
            raise TransportError(f"cannot send to {self.prefix}: an http(s) URL without credentials is needed",
                                 sent=False)
        self.tls = scheme == "https"
        host, port = netloc, _DEFAULT_PORTS[scheme]
        try:
            if netloc.startswith("["):  # an IPv6 literal
                end = netloc.index("]")
                host, rest_port = netloc[1:end], netloc[end + 1:]
                if rest_port:
                    port = int(rest_port.removeprefix(":"))
            elif ":" in netloc:
                host, _, text = netloc.rpartition(":")
                port = int(text)
        except ValueError:
            raise TransportError(f"cannot send to {self.prefix}: the port is not a number", sent=False) from None
        self.host, self.port = host, port
        shown = f"[{host}]" if ":" in host else host
        self.host_header = shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"


class _Connection(asyncio.Protocol):
    """One keep-alive connection: at most one exchange at a time, its answer parsed as it arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.alive = True
        self.idle_since = 0.0
        self._waiter: asyncio.Future | None = None
        self._parser: Any = None
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._body: list[bytes] = []
        self._headers_done = False
        self._lost: asyncio.Future | None = None

    # ------------------------------------------------------------------------ asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._lost = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # bytes nobody asked for: the peer is leaving (a 408, a TLS alert)
            self.alive = False
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ConnectionDroppedError("the gateway switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(ConnectionDroppedError(f"the gateway's answer is not HTTP/1.1: {exc}"))

    def eof_received(self) -> bool:
        self.alive = False
        if self._waiter is not None and self._headers_done and self._until_eof():
            self._complete()  # a body framed by the connection's end (no length, not chunked)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        self._fail(ConnectionDroppedError("the gateway closed the connection before answering in full"))

    # ------------------------------------------------------------------------- httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.add(name.decode("latin-1"), value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        if 100 <= self._parser.get_status_code() < 200:  # interim answer (100 Continue): wait for the real one
            self._headers = CIMultiDict()
            return
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._headers_done:  # else the end of an interim answer: the parser goes on to the final one
            self._complete()

    # ------------------------------------------------------------------------------ the exchange
    async def exchange(self, head: bytes, body: bytes, read_timeout: float) -> tuple[int, CIMultiDict[str], bytes]:
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        self._parser = httptools.HttpResponseParser(self)
        self._headers, self._body, self._headers_done = CIMultiDict(), [], False
        assert self.transport is not None
        self.transport.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.transport.write(body)
        try:
            async with asyncio.timeout(read_timeout):
                return await waiter
        except TimeoutError:
            raise ReadTimeoutError("the gateway did not answer within the read timeout") from None
        finally:
            self._waiter = None
            if not waiter.done() or waiter.cancelled() or waiter.exception() is not None:
                self.alive = False  # an exchange cut short leaves the connection in an unknown state

    def _until_eof(self) -> bool:
        h = self._headers
        return "content-length" not in h and "chunked" not in h.get("transfer-encoding", "").lower()

    def _complete(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if not self._parser.should_keep_alive() or self._until_eof():
            self.alive = False
        body = b"".join(self._body)
        coding = self._headers.get("content-encoding", "").strip().lower()
        if coding in ("gzip", "deflate", "x-gzip"):
            try:
                body = zlib.decompress(body, zlib.MAX_WBITS | 32) if coding != "deflate" else _inflate(body)
            except zlib.error:
                waiter.set_exception(ConnectionDroppedError(f"the gateway's {coding} body does not decode"))
                return
        elif coding not in ("", "identity"):
            waiter.set_exception(ConnectionDroppedError(f"the gateway answered in an unasked encoding {coding!r}"))
            return
        waiter.set_result((self._parser.get_status_code(), self._headers, body))

    def _fail(self, exc: Exception) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.alive = False
        self.close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    async def aclose(self) -> None:
        """Drop the connection now (it is idle: no TLS farewell to wait for) and wait until its socket is gone."""
        if self.transport is not None:
            self.transport.abort()
        if self._lost is not None:
            await self._lost


def _inflate(body: bytes) -> bytes:
    """``deflate`` is zlib-wrapped by the standard and raw in practice: accept both, as browsers do."""
    try:
        return zlib.decompress(body)
    except zlib.error:
        return zlib.decompress(body, -zlib.MAX_WBITS)


class _Pool:
    """This loop's idle connections per origin (most recently used first)."""

    def __init__(self) -> None:
        self.idle: dict[str, list[_Connection]] = {}
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True
        connections = [c for idle in self.idle.values() for c in idle]
        self.idle.clear()
        await asyncio.gather(*(c.aclose() for c in connections))


async def _close_pool(pool: _Pool) -> None:
    await pool.aclose()


class H1Transport:
    """Request/response exchanges on pooled ``asyncio.Protocol`` connections; everything else to aiohttp."""

    def __init__(self, pool_size: int, ssl_verify: bool | str | None, fallback: Any) -> None:
        self._keep = pool_size
        self._ssl_verify = ssl_verify
        self._ssl: ssl.SSLContext | None = None
        self._fallback = fallback  # the AiohttpTransport for streams and proxied origins
        self._pools = PerLoop(_Pool, _close_pool, lambda pool: pool.closed)
        self._origins: dict[str, _Origin] = {}

    def _origin(self, url: str) -> _Origin:
        end = url.find("/", url.find("://") + 3)
        key = url[: end if end >= 0 else len(url)].partition("?")[0]
        found = self._origins.get(key)
        if found is None:
            found = self._origins[key] = _Origin(key)
        return found

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            config = ssl_config(self._ssl_verify)
            if isinstance(config, ssl.SSLContext):
                self._ssl = config
            elif config is False:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                self._ssl = context
            else:
                self._ssl = ssl.create_default_context()
        return self._ssl

    async def send(self, request: Any, *, stream: bool = False) -> Any:
        if stream or self._fallback._proxy(request.url)[0] is not None:
            return await self._fallback.send(request, stream=stream)
        origin = self._origin(request.url)
        head = _head(request, origin)
        pool = self._pools.get()
        connection = self._pooled(pool, origin.prefix)
        if connection is None:
            connection = await self._connect(origin, request.connect_timeout)
        try:
            status, headers, body = await connection.exchange(head, request.content, request.read_timeout)
        except BaseException:
            connection.close()
            raise
        self._release(pool, origin.prefix, connection)
        from .http import HttpResponse

        return HttpResponse(status, headers, body)

    def _pooled(self, pool: _Pool, key: str) -> _Connection | None:
        from .http import _peer_closed

        idle = pool.idle.get(key)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            transport = connection.transport
            if (connection.alive and transport is not None and not transport.is_closing()
                    and now - connection.idle_since < IDLE_SECONDS
                    and not _peer_closed(transport.get_extra_info("socket"))):
                return connection
            connection.close()
        return None

    def _release(self, pool: _Pool, key: str, connection: _Connection) -> None:
        if not connection.alive or pool.closed:
            connection.close()
            return
        idle = pool.idle.setdefault(key, [])
        if len(idle) >= self._keep:
            connection.close()  # beyond the keep-alive pool: the burst's extra connection ends here
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    async def _connect(self, origin: _Origin, timeout: float) -> _Connection:
        from .http import _certificate_error, _local_failure, _untrusted

        loop = asyncio.get_running_loop()
        tls = self._tls() if origin.tls else None
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    _Connection, origin.host, origin.port, ssl=tls,
                    server_hostname=origin.host if tls is not None else None)
        except TimeoutError:
            raise ConnectTimeoutError("no connection to the gateway within connect_timeout", sent=False) from None
        except ssl.SSLCertVerificationError as exc:
            raise _untrusted(exc) from None
        except OSError as exc:
            if _certificate_error(exc) is not None:
                raise _untrusted(_certificate_error(exc)) from None
            if _local_failure(exc):
                raise LocalOverloadError(f"no socket for a new connection: {exc}") from None
            raise TransportError(f"cannot connect to the gateway: {exc}", sent=False) from None
        return connection

    async def aclose(self) -> None:
        """Close this loop's connections (and the fallback's session) now."""
        await self._pools.aclose()
        await self._fallback.aclose()


def _head(request: Any, origin: _Origin) -> bytes:
    """The request line and headers. A header value with a line break is refused, never sent."""
    target = request.url[len(origin.prefix):]
    if not target.startswith("/"):
        target = "/" + target
    lines = [f"{request.method} {target} HTTP/1.1", f"Host: {origin.host_header}",
             f"Content-Length: {len(request.content)}", "Accept-Encoding: gzip, deflate"]
    for name, value in request.headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise TransportError(f"header {name!r} holds a line break: refused", sent=False)
        lines.append(f"{name}: {value}")
    try:
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise TransportError("a request header holds characters HTTP/1.1 cannot carry: refused", sent=False) from None
