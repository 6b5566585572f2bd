"""The default async transport: one HTTP/1.1 request/response on the event loop's own sockets.

Why not aiohttp for every call: measured in ``bench/`` on the gateway's chat call, aiohttp's client
(session, connector, timers, response object, stream reader) costs 0.15–0.35 ms of client CPU per request
above a bare exchange on an ``asyncio.Protocol`` — more than everything else the provider does apart from
the RSA signature. The gateway's calls are the simplest HTTP there is: one POST, one answer with a length
or chunks. So those go here; the message is parsed by ``httptools`` (llhttp, the parser Node.js and
uvicorn use), never by hand. What is not that simple stays with aiohttp: streams, origins reached through
an HTTP proxy, and ``transport: aiohttp`` for whoever wants it everywhere.

Kept the same as the aiohttp transport, where an operator can tell: ``pool_size`` idle connections per
origin (a burst opens as many as it needs), a pooled connection the gateway has closed is never written
to (``_peer_closed``), TLS verified as LiteLLM does it (``egress.ssl_config``: the CA bundle and
verification settings are copied into a context of our own that offers only ``http/1.1``, since the shared
one may offer ``h2``), one pool per event loop closed with its loop, and the same transport errors.
``sent=False`` is said only when no byte of the request can have left this process; the transport never
sends a request twice. ``read_timeout`` bounds the whole answer (aiohttp's bounds each read): for the
gateway it is the call's remaining deadline anyway.
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
from .base import HttpResponse, _certificate_error, _local_failure, _peer_closed, _untrusted, origin_of
from .egress import ssl_config
from .loop_resources import PerLoop

#: A pooled connection idle longer than this is closed rather than reused (aiohttp's keep-alive default
#: is 4 s too): servers drop idle connections on their own schedule, and a request must never race that.
IDLE_SECONDS = 4.0
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Headers this transport writes itself; a caller's copy would make a second, conflicting one.
_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "accept-encoding", "connection"})
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class _Origin:
    """Where a URL's requests go, parsed once per origin (``scheme://host:port``)."""

    __slots__ = ("host", "host_header", "port", "prefix", "tls")

    def __init__(self, prefix: str) -> None:
        scheme, _, netloc = prefix.partition("://")
        self.prefix = prefix
        scheme = scheme.lower()
        if "@" in netloc:  # never echo it: the part before "@" is a credential
            raise TransportError(f"cannot send to {scheme}://…@{netloc.rpartition('@')[2]}: credentials in the "
                                 "URL are not sent; remove them from api_base", sent=False)
        if scheme not in _DEFAULT_PORTS or not netloc:
            raise TransportError(f"cannot send to {prefix!r}: an http:// or https:// URL is needed", sent=False)
        self.tls = scheme == "https"
        host, port = netloc, _DEFAULT_PORTS[scheme]
        try:
            if netloc.startswith("["):  # an IPv6 literal
                end = netloc.index("]")
                host, after = netloc[1:end], netloc[end + 1:]
                if after:
                    port = int(after.removeprefix(":"))
            elif ":" in netloc:
                host, _, text = netloc.rpartition(":")
                port = int(text)
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            raise TransportError(f"cannot send to {prefix!r}: the port is not a port number", sent=False) from None
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
        self._status = 0
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._body: list[bytes] = []
        self._headers_done = False
        self._answered = False
        self._lost: asyncio.Future | None = None

    # ------------------------------------------------------------------------ asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._lost = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._answered:  # bytes nobody asked for: the peer is leaving (a 408,
            self.abort()                              # an alert) or sent more than one answer
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ConnectionDroppedError("the gateway switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(ConnectionDroppedError(f"the gateway's answer is not HTTP/1.1: {exc}"))

    def eof_received(self) -> bool:
        self.alive = False
        if self._waiter is not None and self._headers_done and not self._answered and self._until_eof():
            self._complete()  # a body framed by the connection's end (no length, not chunked)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        self._fail(ConnectionDroppedError("the gateway closed the connection before answering in full"))

    # ------------------------------------------------------------------------- httptools callbacks
    def on_message_begin(self) -> None:
        if self._answered:  # a second answer to one request: never trust this connection again
            self.alive = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._answered:
            self._headers.add(name.decode("latin-1"), value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        if self._answered:
            return
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            self._headers = CIMultiDict()
            return
        self._status = status
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        if not self._answered:
            self._body.append(body)

    def on_message_complete(self) -> None:
        if self._headers_done and not self._answered:  # else an interim answer's end, or a stray one
            self._complete()

    # ------------------------------------------------------------------------------ the exchange
    async def exchange(self, head: bytes, body: bytes, read_timeout: float) -> tuple[int, CIMultiDict[str], bytes]:
        transport = self.transport
        if transport is None or not self.alive or transport.is_closing():
            raise TransportError("the connection closed before the request was written", sent=False)
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        self._parser = httptools.HttpResponseParser(self)
        self._headers, self._body, self._headers_done, self._answered = CIMultiDict(), [], False, False
        if len(body) < 65536:
            transport.write(head + body)
        else:  # no copy of a large body
            transport.write(head)
            transport.write(body)
        try:
            async with asyncio.timeout(read_timeout):
                return await waiter
        except TimeoutError:
            raise ReadTimeoutError("the gateway did not answer within the read timeout") from None
        finally:
            self._waiter = None
            if not waiter.done() or waiter.cancelled() or waiter.exception() is not None:
                self.alive = False  # an exchange cut short leaves the connection in an unknown state

    def reusable(self) -> bool:
        transport = self.transport
        return (self.alive and transport is not None and not transport.is_closing()
                and not transport.get_write_buffer_size())  # an early answer with the body still unsent

    def _until_eof(self) -> bool:
        h = self._headers
        return (self._status not in (204, 304) and "content-length" not in h
                and "chunked" not in h.get("transfer-encoding", "").lower())

    def _complete(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        self._answered = True
        if not self._parser.should_keep_alive() or self._until_eof():
            self.alive = False
        headers = self._headers
        body = b"".join(self._body)
        coding = headers.get("content-encoding", "").strip().lower()
        if body and coding not in ("", "identity"):
            try:
                body = _decode(body, coding)
            except (zlib.error, ValueError) as exc:
                self.alive = False
                waiter.set_exception(ConnectionDroppedError(f"the gateway's {coding} body does not decode: {exc}"))
                return
        waiter.set_result((self._status, headers, body))

    def _fail(self, exc: Exception) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.abort()

    def abort(self) -> None:
        """Drop the connection at once: nothing buffered is sent after it, no TLS farewell is awaited."""
        self.alive = False
        if self.transport is not None:
            self.transport.abort()

    async def aclose(self) -> None:
        """Drop the connection and wait until its socket is gone."""
        self.abort()
        if self._lost is not None:
            await self._lost


def _decode(body: bytes, coding: str) -> bytes:
    """gzip (every member) or deflate (zlib-wrapped by the standard, raw in practice: both accepted)."""
    if coding in ("gzip", "x-gzip"):
        out = []
        while body:
            decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
            out.append(decoder.decompress(body))
            if not decoder.eof:
                raise ValueError("truncated")
            body = decoder.unused_data
        return b"".join(out)
    if coding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, -zlib.MAX_WBITS)
    raise ValueError(f"{coding!r} was not asked for")


class _Pool:
    """This loop's idle connections per origin (most recently used last) and those in use."""

    def __init__(self) -> None:
        self.idle: dict[str, list[_Connection]] = {}
        self.busy: set[_Connection] = set()
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True
        connections = [c for idle in self.idle.values() for c in idle] + list(self.busy)
        self.idle.clear()
        self.busy.clear()
        await asyncio.gather(*(c.aclose() for c in connections))


async def _close_pool(pool: _Pool) -> None:
    await pool.aclose()


def _context(ssl_verify: bool | str | None) -> ssl.SSLContext:
    """LiteLLM's TLS verification (CA bundle, verification, protocol floor) in a context of our own that
    offers only ``http/1.1``: LiteLLM's contexts are shared, and httpcore makes them offer ``h2`` too."""
    base = ssl_config(ssl_verify)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if base is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif isinstance(base, ssl.SSLContext):
        certificates = base.get_ca_certs(binary_form=True)
        if certificates:
            context.load_verify_locations(cadata=b"".join(certificates))
        else:
            context.load_default_certs()
        context.minimum_version = base.minimum_version
        context.verify_flags = base.verify_flags
        context.check_hostname = base.check_hostname
        context.verify_mode = base.verify_mode
    else:
        context.load_default_certs()
    context.set_alpn_protocols(["http/1.1"])
    return context


class H1Transport:
    """Request/response exchanges on pooled ``asyncio.Protocol`` connections; everything else to aiohttp."""

    def __init__(self, pool_size: int, ssl_verify: bool | str | None, fallback: Any) -> None:
        self._keep = pool_size
        self._ssl_verify = ssl_verify
        self._ssl: ssl.SSLContext | None = None
        self._fallback = fallback  # the AiohttpTransport for streams and proxied origins
        self._pools = PerLoop(_Pool, _close_pool, lambda pool: pool.closed)
        self._origins: dict[str, _Origin] = {}

    def _origin(self, key: str) -> _Origin:
        found = self._origins.get(key)
        if found is None:
            found = self._origins[key] = _Origin(key)
        return found

    async def send(self, request: Any, *, stream: bool = False) -> Any:
        key = origin_of(request.url)  # once: the proxy choice and the pool are both kept per origin
        if stream or self._fallback.proxy_for(key)[0] is not None:
            return await self._fallback.send(request, stream=stream)
        origin = self._origin(key)
        head = _head(request, origin)
        pool = self._pools.get()
        connection = await self._acquire(pool, origin, request.connect_timeout)
        pool.busy.add(connection)
        try:
            status, headers, body = await connection.exchange(head, request.content, request.read_timeout)
        except BaseException:
            connection.abort()
            raise
        finally:
            pool.busy.discard(connection)
        self._release(pool, origin.prefix, connection)
        return HttpResponse(status, headers, body)

    async def _acquire(self, pool: _Pool, origin: _Origin, timeout: float) -> _Connection:
        """A pooled connection still open, else a new one; nothing has been written to either yet, so a
        new connection the gateway closes at once is replaced once before giving up (``sent=False``)."""
        idle = pool.idle.get(origin.prefix)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if (connection.reusable() and now - connection.idle_since < IDLE_SECONDS
                    and not _peer_closed(connection.transport.get_extra_info("socket"))):  # type: ignore[union-attr]
                return connection
            connection.abort()
        for _ in range(2):
            connection = await self._connect(origin, timeout)
            if connection.reusable():
                return connection
            connection.abort()
        raise TransportError("the gateway closed each new connection before the request was written", sent=False)

    def _release(self, pool: _Pool, key: str, connection: _Connection) -> None:
        if not connection.reusable() or pool.closed:
            connection.abort()
            return
        idle = pool.idle.setdefault(key, [])
        if len(idle) >= self._keep:
            connection.abort()  # beyond the keep-alive pool: the burst's extra connection ends here
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    async def _connect(self, origin: _Origin, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = None
        if origin.tls:
            if self._ssl is None:
                self._ssl = _context(self._ssl_verify)
            tls = self._ssl
        try:
            async with asyncio.timeout(timeout):
                transport, connection = await loop.create_connection(
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
        if tls is not None:
            tls_object = transport.get_extra_info("ssl_object")
            if tls_object is not None and tls_object.selected_alpn_protocol() not in (None, "http/1.1"):
                connection.abort()
                raise TransportError("the gateway chose a protocol other than HTTP/1.1", sent=False)
        return connection

    async def aclose(self) -> None:
        """Close this loop's connections (and the fallback's session) now."""
        await self._pools.aclose()
        await self._fallback.aclose()


def _head(request: Any, origin: _Origin) -> bytes:
    """The request line and headers. Anything that would split a line or a header is refused, never sent."""
    target = request.url[len(origin.prefix):]
    if not target.startswith("/"):
        target = "/" + target
    if not target.isascii() or not target.isprintable() or " " in target:
        raise TransportError("the request URL holds spaces, control or non-ASCII characters: refused", sent=False)
    lines = [f"{request.method} {target} HTTP/1.1", f"Host: {origin.host_header}",
             f"Content-Length: {len(request.content)}", "Accept-Encoding: gzip, deflate"]
    for name, value in request.headers.items():
        if not name or not _TOKEN.issuperset(name) or name.lower() in _OWN_HEADERS:
            raise TransportError(f"request header name {name!r} cannot be sent: refused", sent=False)
        if "\r" in value or "\n" in value or "\0" in value:
            raise TransportError(f"request header {name} holds a line break: refused", sent=False)
        lines.append(f"{name}: {value}")
    try:
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise TransportError("a request header holds characters HTTP/1.1 cannot carry: refused", sent=False) from None
