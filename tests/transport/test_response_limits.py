"""What may come back is bounded (issue 22), each bound a setting named in its error:
header count and line size, the body on the wire and as it inflates (a gzip or deflate bomb refused while
inflating, under a memory bound), one SSE event, a stream's total; and no body is kept once a response is
consumed (30 idle pooled connections keep nothing)."""

from __future__ import annotations

import asyncio
import gc
import gzip
import tracemalloc
import zlib

import litellm
import pytest

from litellm_alipay.errors import ConfigurationError, ResponseLimitError
from litellm_alipay.settings import build_settings
from litellm_alipay.transport.http import AiohttpTransport, HttpRequest
from litellm_alipay.transport.limits import DEFAULT_LIMITS, ResponseLimits
from litellm_alipay.wire import protocol

from .net_helpers import CannedServer, big_answer_server, http_answer

MIB = 1024 * 1024
ASK = [{"role": "user", "content": "hello"}]


def _request(port: int) -> HttpRequest:
    return HttpRequest(url=f"http://127.0.0.1:{port}/gateway.do", content=b"x=1", headers={},
                       read_timeout=30, connect_timeout=5)


async def _refused(answer: bytes, limits: ResponseLimits = DEFAULT_LIMITS, stream: bool = False) -> ResponseLimitError:
    with CannedServer(answer, close=True) as server:
        transport = AiohttpTransport(2, limits=limits)
        try:
            with pytest.raises(ResponseLimitError) as info:
                response = await transport.send(_request(server.port), stream=stream)
                if stream:
                    async for _ in response:
                        pass
            return info.value
        finally:
            await transport.aclose()


# ------------------------------------------------------------------------------------------ headers
async def test_a_header_flood_is_refused_naming_max_response_headers():
    flood = [(f"X-Flood-{i}", "x") for i in range(100_000)]
    error = await _refused(http_answer("200 OK", flood, b"{}"))
    assert error.setting == "max_response_headers" and "max_response_headers" in str(error)


async def test_an_8_mib_header_is_refused_naming_max_response_header_size():
    error = await _refused(http_answer("200 OK", {"X-Big": "a" * (8 * MIB)}, b"{}"))
    assert error.setting == "max_response_header_size"


async def test_the_header_limits_come_from_the_deployment(deployment, no_proxy_env):
    """Through LiteLLM: a deployment's ``max_response_headers`` is the one applied, and named."""
    many = [(f"X-H-{i}", "x") for i in range(40)]
    with CannedServer(http_answer("200 OK", many, b"{}")) as server:
        settings = {**deployment, "api_base": f"http://127.0.0.1:{server.port}/gateway.do",
                    "max_response_headers": 20}
        with pytest.raises(litellm.APIConnectionError) as info:
            await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, num_retries=0, **settings)
    assert "max_response_headers (20)" in str(info.value)


# --------------------------------------------------------------------------------------------- body
async def test_a_declared_length_over_max_response_body_is_refused_unread():
    body = b"x" * (2 * MIB)
    error = await _refused(http_answer("200 OK", {}, body), ResponseLimits(max_response_body=MIB))
    assert error.setting == "max_response_body" and "Content-Length" in str(error)


async def test_a_chunked_body_over_max_response_body_is_refused():
    chunk = b"x" * 65536
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(40)) + b"0\r\n\r\n"
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
    error = await _refused(answer, ResponseLimits(max_response_body=MIB))
    assert error.setting == "max_response_body"


def _bomb(encoding: str) -> bytes:
    """256 MiB of zeros, compressed (about 250 KiB on the wire)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
    block = bytes(MIB)
    return b"".join([packer.compress(block) for _ in range(256)] + [packer.flush()])


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compression_bomb_is_refused_as_it_inflates_under_a_memory_bound(encoding):
    answer = http_answer("200 OK", {"Content-Encoding": encoding}, _bomb(encoding))
    limits = ResponseLimits(max_decompressed_body=4 * MIB)
    gc.collect()
    tracemalloc.start()
    try:
        error = await _refused(answer, limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.setting == "max_decompressed_body"
    # the answer itself (~0.25 MiB, held by the test server) + the 4 MiB allowed + parser buffers; inflating
    # it whole would take 256 MiB
    assert peak < 24 * MIB, peak / MIB


async def test_a_compressed_body_within_the_limits_is_decoded():
    payload = b'{"ok": true}' * 1000
    for encoding, packed in (("gzip", gzip.compress(payload)), ("deflate", zlib.compress(payload)),
                             ("deflate", zlib.compress(payload)[2:-4])):  # raw deflate, as some servers send
        with CannedServer(http_answer("200 OK", {"Content-Encoding": encoding}, packed)) as server:
            transport = AiohttpTransport(2)
            response = await transport.send(_request(server.port))
            assert response.content == payload
            await transport.aclose()


# ------------------------------------------------------------------------------------------ streams
async def test_a_stream_over_max_stream_body_is_refused():
    events = b"data: {}\n\n" * (200 * 1024)  # 2 MiB of small events
    answer = http_answer("200 OK", {"Content-Type": "text/event-stream"}, events)
    error = await _refused(answer, ResponseLimits(max_stream_body=MIB), stream=True)
    assert error.setting == "max_stream_body"


def test_one_sse_event_over_max_sse_event_is_refused_before_it_ends():
    decoder = protocol.SSEDecoder(max_event=64 * 1024)
    assert [e.data for e in decoder.feed(b"data: small\n\n")] == ["small"]
    with pytest.raises(ResponseLimitError) as info:
        for _ in range(100):  # never a blank line: without the bound this buffers for ever
            list(decoder.feed(b"data: " + b"x" * 4096 + b"\n"))
    assert info.value.setting == "max_sse_event"


async def test_max_sse_event_reaches_the_gateway_stream(deployment, no_proxy_env):
    event = b"data: " + b"x" * 4096 + b"\n\n"
    answer = http_answer("200 OK", {"Content-Type": "text/event-stream"}, event)
    with CannedServer(answer) as server:
        settings = {**deployment, "api_base": f"http://127.0.0.1:{server.port}/gateway.do", "max_sse_event": 1024}
        with pytest.raises(Exception) as info:
            reply = await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, stream=True,
                                              num_retries=0, **settings)
            async for _ in reply:
                pass
    assert "max_sse_event (1024)" in str(info.value)


# ----------------------------------------------------------------------------------- retained bodies
async def test_no_body_is_kept_once_consumed_even_with_every_connection_pooled():
    """30 answers of 4 MiB at once, then 30 idle pooled connections: what stays allocated is not the bodies.

    The server is another process, so what ``tracemalloc`` sees is this client's memory only."""
    size = 4 * MIB
    with big_answer_server(30, size) as port:
        transport = AiohttpTransport(30)

        async def fetch() -> tuple[bytes, int]:  # the caller keeps only the connection's number and a length
            answer = await transport.send(_request(port))
            return answer.content[:8], len(answer.content)

        gc.collect()
        tracemalloc.start()
        try:
            baseline, _ = tracemalloc.get_traced_memory()
            answers = await asyncio.gather(*(fetch() for _ in range(30)))
            first = {number for number, _ in answers}
            assert len(first) == 30 and {length for _, length in answers} == {size}
            gc.collect()
            kept, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert kept - baseline < 8 * MIB, (kept - baseline) / MIB  # 120 MiB if each kept its last body
        again = await asyncio.gather(*(fetch() for _ in range(30)))
        assert {number for number, _ in again} == first  # the same 30 connections: they were pooled, idle
        await transport.aclose()


# --------------------------------------------------------------------------------------- settings
def test_limits_are_settings_with_defaults_and_named_errors(deployment):
    assert build_settings(deployment, env={}).limits == DEFAULT_LIMITS
    chosen = build_settings({**deployment, "max_response_body": "2048"}, env={"ALIPAY_MAX_SSE_EVENT": "512"})
    assert chosen.limits.max_response_body == 2048 and chosen.limits.max_sse_event == 512
    with pytest.raises(ConfigurationError, match="max_decompressed_body"):
        build_settings({**deployment, "max_decompressed_body": "lots"}, env={})
    with pytest.raises(ConfigurationError, match="max_response_headers"):
        build_settings({**deployment, "max_response_headers": 0}, env={})
