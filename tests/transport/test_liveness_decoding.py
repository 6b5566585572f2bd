"""Smaller items of issue 11 in the transport: a TLS ``close_notify`` on an idle pooled connection marks
it dead (never written to), and streams are decoded as the ``Accept-Encoding`` we send asks for."""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import threading

import pytest

from litellm_alipay.transport.http import AiohttpTransport, HttpRequest

from .net_helpers import BarrierServer, make_ca


def _serve_tls_then_close_notify(pki, notified: threading.Event):
    """TLS server: connection 1 answers one request, then sends ``close_notify`` and keeps the TCP
    connection open (no FIN); connection 2 answers normally. Requests seen per connection are kept."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[int] = []

    def answer(conn: ssl.SSLSocket, number: int) -> None:
        with conn.makefile("rb") as head:  # the request head; its small body is never read
            while head.readline() not in (b"\r\n", b""):
                pass
        payload = json.dumps({"connection": number}).encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                     + str(len(payload)).encode() + b"\r\n\r\n" + payload)
        seen[number - 1] += 1

    def serve():
        raw1, _ = listener.accept()
        first = pki.server_context.wrap_socket(raw1, server_side=True)
        seen.append(0)
        answer(first, 1)
        first.setblocking(False)
        try:
            first.unwrap()  # sends close_notify; the peer's reply is not awaited
        except (ssl.SSLWantReadError, ssl.SSLError, OSError):
            pass
        notified.set()
        raw2, _ = listener.accept()
        seen.append(0)
        with pki.server_context.wrap_socket(raw2, server_side=True) as second:
            answer(second, 2)
        raw1.close()
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], seen, thread


async def test_tls_close_notify_on_an_idle_connection_means_dead(tmp_path):
    pki = make_ca(tmp_path)
    notified = threading.Event()
    port, seen, thread = _serve_tls_then_close_notify(pki, notified)
    transport = AiohttpTransport(pool_size=1, ssl_verify=str(pki.ca_path))
    request = HttpRequest(url=f"https://127.0.0.1:{port}/gateway.do", content=b"x=1", headers={},
                          read_timeout=5, connect_timeout=5)
    first = await transport.send(request)
    assert notified.wait(5)  # blocks the loop on purpose: the close_notify is unread when we reuse
    second = await transport.send(request)
    assert json.loads(first.content) == {"connection": 1}
    assert json.loads(second.content) == {"connection": 2}
    assert seen == [1, 1]
    await transport.aclose()
    thread.join(5)


SSE = b"".join(b'data: {"n": %d, "text": "\xe4\xbd\xa0\xe5\xa5\xbd"}\n\n' % i for i in range(200))


@pytest.fixture
def gzip_sse_server():
    headers = {"Content-Type": "text/event-stream", "Content-Encoding": "gzip"}
    with BarrierServer(1, body=gzip.compress(SSE), headers=headers) as server:
        yield server


def _stream_request(port: int) -> HttpRequest:
    return HttpRequest(url=f"http://127.0.0.1:{port}/gateway.do", content=b"x=1", headers={},
                       read_timeout=5, connect_timeout=5)


def test_sync_stream_is_decoded(gzip_sse_server):
    """The sync path drives the async stack on the sync driver's loop (``sync_driver.py``)."""
    from litellm_alipay.transport.sync_driver import SYNC

    async def read() -> bytes:
        transport = AiohttpTransport(2)
        stream = await transport.send(_stream_request(gzip_sse_server.port), stream=True)
        try:
            return b"".join([part async for part in stream])
        finally:
            await stream.aclose()
            await transport.aclose()

    assert SYNC.run(read()) == SSE


async def test_async_stream_is_decoded(gzip_sse_server):
    transport = AiohttpTransport(2)
    stream = await transport.send(_stream_request(gzip_sse_server.port), stream=True)
    try:
        assert b"".join([part async for part in stream]) == SSE
    finally:
        await stream.aclose()
