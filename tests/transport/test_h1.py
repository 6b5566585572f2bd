"""The default async transport (``transport/h1.py``) against a scripted HTTP/1.1 server on loopback: every way
an answer can be framed, every way a connection can end, and what is refused before a byte is sent."""

from __future__ import annotations

import asyncio
import gzip
import select
import socket
import ssl
import threading
from collections.abc import AsyncIterator

import pytest

from litellm_alipay.errors import ConnectionDroppedError, ReadTimeoutError, TransportError
from litellm_alipay.transport.h1 import H1Transport
from litellm_alipay.transport.http import HttpRequest, _peer_closed

from .net_helpers import make_ca

#: What the server does for one request: the bytes to answer, "close" (drop without answering) or
#: "hang" (never answer).
Action = bytes | str


def answer(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 {status}\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


class ScriptedServer:
    """Answers the n-th request with ``script[n]``; records each request and connection."""

    def __init__(self, script: list[Action], tls: ssl.SSLContext | None = None) -> None:
        self.script = list(script)
        self.requests: list[tuple[str, dict[str, str], bytes, int]] = []  # (line, headers, body, connection)
        self.connections = 0
        self.ended = 0  # connections the client ended (EOF or reset seen by the server)
        self.tls = tls
        self._hang = asyncio.Event()

    async def __aenter__(self) -> ScriptedServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._hang.set()
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        me = self.connections
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                    self.ended += 1
                    return
                line, *rest = head.decode("latin-1").split("\r\n")
                headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in rest if h)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append((line, headers, body, me))
                action = self.script.pop(0)
                if action == "close":
                    return
                if action == "hang":
                    await self._hang.wait()
                    return
                writer.write(action)
                await writer.drain()
                framed = b"Content-Length" in action or b"chunked" in action or action.startswith(b"HTTP/1.1 204")
                if b"Connection: close" in action or not framed:
                    return
        finally:
            writer.close()


class Fallback:
    """Stands in for the aiohttp transport: records what was handed to it."""

    def __init__(self) -> None:
        self.sent: list[tuple[HttpRequest, bool]] = []
        self.proxied: set[str] = set()  # origins an HTTP proxy is configured for

    def proxy_for(self, origin: str) -> tuple[object, object]:
        return ("http://proxy.invalid", None) if origin in self.proxied else (None, None)

    async def send(self, request: HttpRequest, *, stream: bool = False) -> str:
        self.sent.append((request, stream))
        return "fallback"

    async def aclose(self) -> None:
        pass


def request(port: int, path: str = "/gateway.do?charset=utf-8", *, body: bytes = b"a=1", read_timeout: float = 10,
            headers: dict[str, str] | None = None) -> HttpRequest:
    return HttpRequest(url=f"http://127.0.0.1:{port}{path}", content=body,
                       headers=headers or {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
                       read_timeout=read_timeout, connect_timeout=5)


@pytest.fixture
async def transport() -> AsyncIterator[H1Transport]:
    t = H1Transport(2, None, Fallback())
    yield t
    await t.aclose()


async def test_the_request_line_headers_and_body_are_what_the_gateway_expects(transport):
    async with ScriptedServer([answer(b'{"ok":1}', "Content-Type: application/json")]) as server:
        got = await transport.send(request(server.port, body=b"biz_content=%7B%7D&sign=abc"))
    assert (got.status, got.content, got.headers["content-type"]) == (200, b'{"ok":1}', "application/json")
    line, headers, body, _ = server.requests[0]
    assert line == "POST /gateway.do?charset=utf-8 HTTP/1.1"
    assert headers["host"] == f"127.0.0.1:{server.port}"
    assert headers["content-type"] == "application/x-www-form-urlencoded;charset=utf-8"
    assert body == b"biz_content=%7B%7D&sign=abc"


async def test_chunked_gzip_and_an_interim_100_are_decoded(transport):
    payload = gzip.compress(b'{"big":"' + b"x" * 5000 + b'"}')
    half = len(payload) // 2
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (payload[:half], payload[half:]))
    chunked = (b"HTTP/1.1 100 Continue\r\n\r\n"
               b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
               + chunks + b"0\r\n\r\n")
    async with ScriptedServer([chunked, answer(b"second")]) as server:
        first = await transport.send(request(server.port))
        second = await transport.send(request(server.port))
    assert first.status == 200 and first.content == b'{"big":"' + b"x" * 5000 + b'"}'
    assert second.content == b"second"
    assert server.connections == 1  # the chunked answer left the connection reusable


async def test_a_body_framed_by_the_connection_end_is_read_and_the_connection_not_reused(transport):
    async with ScriptedServer([b"HTTP/1.1 200 OK\r\n\r\nto the end", answer(b"next")]) as server:
        first = await transport.send(request(server.port))
        second = await transport.send(request(server.port))
    assert (first.content, second.content) == (b"to the end", b"next")
    assert server.connections == 2


async def test_connection_close_is_honoured_and_keep_alive_reuses(transport):
    script = [answer(b"1"), answer(b"2", "Connection: close"), answer(b"3")]
    async with ScriptedServer(script) as server:
        bodies = [(await transport.send(request(server.port))).content for _ in range(3)]
    assert bodies == [b"1", b"2", b"3"]
    assert [r[3] for r in server.requests] == [1, 1, 2]


async def test_a_connection_the_gateway_closed_while_idle_is_never_written_to(transport):
    async with ScriptedServer([answer(b"1"), answer(b"2")]) as server:
        await transport.send(request(server.port))
        # The server closes its side of the idle connection; the loop may not have noticed yet.
        server.server.close()
        serving = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__.startswith("ScriptedServer._serve")]
        for task in serving:
            task.cancel()
        await asyncio.gather(*serving, return_exceptions=True)  # its socket is closed: the FIN is on its way
        server.server = await asyncio.start_server(server._serve, "127.0.0.1", server.port)
        second = await transport.send(request(server.port))
    assert second.content == b"2"
    assert [r[3] for r in server.requests] == [1, 2]  # a new connection carried the second request


async def test_a_drop_after_sending_is_a_dropped_connection_that_may_have_been_sent(transport):
    async with ScriptedServer(["close"]) as server:
        with pytest.raises(ConnectionDroppedError) as caught:
            await transport.send(request(server.port, read_timeout=60))
    assert caught.value.sent is True
    assert len(server.requests) == 1


async def test_no_answer_is_a_read_timeout(transport):
    async with ScriptedServer(["hang"]) as server:
        with pytest.raises(ReadTimeoutError):
            await transport.send(request(server.port, read_timeout=0.2))


async def test_nothing_listening_is_a_connection_error_with_nothing_sent(transport):
    async with ScriptedServer([]) as server:
        port = server.port
    with pytest.raises(TransportError) as caught:
        await transport.send(request(port))
    assert caught.value.sent is False


@pytest.mark.parametrize("bad", [{"X-Token": "a\r\nInjected: 1"}, {"X-Name": "支付宝"}, {"Content-Length": "1"},
                                 {"Bad Name": "x"}])
async def test_a_header_that_cannot_be_sent_safely_is_refused_before_sending(transport, bad):
    async with ScriptedServer([answer(b"never")]) as server:
        with pytest.raises(TransportError) as caught:
            await transport.send(request(server.port, headers=bad))
    assert caught.value.sent is False
    assert server.requests == [] and server.connections == 0


@pytest.mark.parametrize("stream, proxied", [(True, False), (False, True)])
async def test_streams_and_proxied_origins_go_to_the_fallback(stream: bool, proxied: bool, transport):
    async with ScriptedServer([]) as server:
        req = request(server.port)
        if proxied:
            transport._fallback.proxied.add(f"http://127.0.0.1:{server.port}")
        assert await transport.send(req, stream=stream) == "fallback"
    assert transport._fallback.sent == [(req, stream)]
    assert server.connections == 0


async def test_a_burst_keeps_only_the_pool_and_aclose_closes_it(transport):
    async with ScriptedServer([answer(b"%d" % i) for i in range(6)]) as server:
        answers = await asyncio.gather(*(transport.send(request(server.port)) for _ in range(5)))
        assert sorted(a.content for a in answers) == [b"0", b"1", b"2", b"3", b"4"]
        pool = transport._pools.get()
        assert sum(len(idle) for idle in pool.idle.values()) == 2  # pool_size 2 of the 5 stayed
        await transport.aclose()
        while server.ended < 5:  # the server sees each of the five connections end (3 at once, 2 at aclose)
            await asyncio.sleep(0)


def _blocking_server(replies: list[bytes], close_first: threading.Event, first_closed: threading.Event
                     ) -> tuple[int, list[socket.socket]]:
    """A thread server: answers each connection's one request; closes the first connection on a signal."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def one(conn: socket.socket, n: int) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        conn.sendall(replies[n])
        if n == 0:
            close_first.wait(10)
            conn.close()
            first_closed.set()

    def serve() -> None:
        for n in range(len(replies)):
            conn, _ = listener.accept()
            accepted.append(conn)
            threading.Thread(target=one, args=(conn, n), daemon=True).start()
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], accepted


async def test_the_liveness_check_catches_a_close_the_loop_has_not_seen(transport):
    """The FIN is in the socket but the loop has not run since: only ``_peer_closed`` can tell."""
    close_first, first_closed = threading.Event(), threading.Event()
    port, accepted = _blocking_server([answer(b"1"), answer(b"2")], close_first, first_closed)
    assert (await transport.send(request(port))).content == b"1"
    pooled = transport._pools.get().idle[f"http://127.0.0.1:{port}"][0]
    sock = pooled.transport.get_extra_info("socket")
    # The loop is blocked from here to the next send: the close is never delivered to the protocol.
    close_first.set()
    assert first_closed.wait(10)
    assert select.select([sock.fileno()], [], [], 10)[0]  # the FIN has reached this socket
    assert _peer_closed(sock)
    second = await transport.send(request(port))
    assert second.content == b"2" and len(accepted) == 2


async def test_a_cancelled_exchange_is_aborted_and_never_pooled(transport):
    async with ScriptedServer(["hang", answer(b"after")]) as server:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):  # the caller's deadline, as the gateway's timeout_at
                await transport.send(request(server.port, read_timeout=60))
        pool = transport._pools.get()
        assert not pool.busy and not any(pool.idle.values())
        assert (await transport.send(request(server.port))).content == b"after"
    assert server.connections == 2


async def test_a_second_answer_to_one_request_is_not_taken_and_the_connection_not_reused(transport):
    double = answer(b"ok") + answer(b"evil", "X-Evil: 1")
    async with ScriptedServer([double, answer(b"next")]) as server:
        first = await transport.send(request(server.port))
        assert first.content == b"ok" and "X-Evil" not in first.headers
        assert (await transport.send(request(server.port))).content == b"next"
    assert server.connections == 2


async def test_no_body_answers_http_1_0_and_large_requests(transport):
    script = [b"HTTP/1.1 204 No Content\r\n\r\n", b"HTTP/1.1 204 No Content\r\n\r\n",
              answer(b"", "Content-Encoding: gzip", status="502 Bad Gateway"),
              b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold", answer(b"big")]
    async with ScriptedServer(script) as server:
        first = await transport.send(request(server.port))
        second = await transport.send(request(server.port))
        assert (first.status, second.status, server.connections) == (204, 204, 1)  # 204 keeps the connection
        bad = await transport.send(request(server.port))
        assert (bad.status, bad.content) == (502, b"")  # an empty gzip body is no decoding error
        old = await transport.send(request(server.port))
        assert old.content == b"old"  # HTTP/1.0 without keep-alive: not reused afterwards
        large = b"x" * 200_000
        assert (await transport.send(request(server.port, body=large))).content == b"big"
    assert server.requests[-1][2] == large and server.requests[-1][3] == 2


async def test_tls_is_http_1_1_even_when_the_shared_context_offers_h2(tmp_path):
    from litellm_alipay.transport.egress import ssl_config

    pki = make_ca(tmp_path)
    shared = ssl_config(str(pki.ca_path))
    assert isinstance(shared, ssl.SSLContext)
    shared.set_alpn_protocols(["h2", "http/1.1"])  # what httpcore does to it for an http2 deployment
    server_tls = pki.server_context
    server_tls.set_alpn_protocols(["h2", "http/1.1"])
    t = H1Transport(2, str(pki.ca_path), Fallback())
    try:
        async with ScriptedServer([answer(b"over tls")], tls=server_tls) as server:
            got = await t.send(HttpRequest(url=f"https://127.0.0.1:{server.port}/gateway.do", content=b"a=1",
                                           headers={}, read_timeout=10, connect_timeout=5))
        assert got.content == b"over tls"
    finally:
        await t.aclose()


async def test_a_credential_in_the_url_is_never_sent_nor_shown(transport):
    with pytest.raises(TransportError) as caught:
        await transport.send(HttpRequest(url="http://app:s3cret@127.0.0.1:1/gateway.do", content=b"",
                                         headers={}, read_timeout=1, connect_timeout=1))
    assert caught.value.sent is False and "s3cret" not in str(caught.value)
