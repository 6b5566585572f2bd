"""The default async transport (``transport/h1.py``) against a scripted HTTP/1.1 server on loopback: every way
an answer can be framed, every way a connection can end, and what is refused before a byte is sent."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable

import pytest

from litellm_alipay.errors import ConnectionDroppedError, ReadTimeoutError, TransportError
from litellm_alipay.transport.h1 import H1Transport
from litellm_alipay.transport.http import HttpRequest

#: What the server does for one request: the bytes to answer, "close" (drop without answering) or
#: "hang" (never answer).
Action = bytes | str


def answer(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 {status}\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


class ScriptedServer:
    """Answers the n-th request with ``script[n]``; records each request and connection."""

    def __init__(self, script: list[Action]) -> None:
        self.script = list(script)
        self.requests: list[tuple[str, dict[str, str], bytes, int]] = []  # (line, headers, body, connection)
        self.connections = 0
        self._hang = asyncio.Event()

    async def __aenter__(self) -> ScriptedServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
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
                except asyncio.IncompleteReadError:
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
                if b"Connection: close" in action or b"Content-Length" not in action and b"chunked" not in action:
                    return
        finally:
            writer.close()


class Fallback:
    """Stands in for the aiohttp transport: records what was handed to it."""

    def __init__(self) -> None:
        self.sent: list[tuple[HttpRequest, bool]] = []

    def _proxy(self, url: str) -> tuple[object, object]:
        return ("http://proxy.invalid", None) if "proxied" in url else (None, None)

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


@pytest.mark.parametrize("bad", [{"X-Token": "a\r\nInjected: 1"}, {"X-Name": "支付宝"}])
async def test_a_header_that_cannot_be_sent_safely_is_refused_before_sending(transport, bad):
    async with ScriptedServer([answer(b"never")]) as server:
        with pytest.raises(TransportError) as caught:
            await transport.send(request(server.port, headers=bad))
    assert caught.value.sent is False
    assert server.requests == [] and server.connections == 0


@pytest.mark.parametrize("make", [lambda port: (request(port), True),
                                  lambda port: (request(port, path="/proxied/gateway.do"), False)])
async def test_streams_and_proxied_origins_go_to_the_fallback(make: Callable, transport):
    async with ScriptedServer([]) as server:
        req, stream = make(server.port)
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
        assert all(not idle for idle in pool.idle.values())
