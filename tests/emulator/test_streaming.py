"""B3 streaming: chunks, usage on the last chunk, and the sign event over every data payload."""

from __future__ import annotations

import json

from .helpers import CHAT, Client, chat_biz
from .helpers_stream import read_stream, sign_ok, text_of


def _stream(client: Client, text: str, **extra: object):
    resp = client.post(client.params(CHAT, chat_biz(text, stream=True, **extra)))
    assert resp.status_code == 200
    return resp


def test_stream_ends_with_valid_sign_event(client: Client) -> None:
    resp = _stream(client, "stream this please")
    assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"
    events, pending = read_stream(resp)
    assert not pending
    assert sign_ok(events, client.alipay_public)
    assert text_of(events) == "You said: stream this please"
    last = json.loads(events[-2].data)
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["usage"]["output_chars"] == len("You said: stream this please")
    assert json.loads(events[0].data)["choices"][0]["delta"]["role"] == "assistant"


def test_stream_sign_detects_tampering(client: Client) -> None:
    events, _ = read_stream(_stream(client, "a b c"))
    forged = [*events[:1], *events[2:]]  # one chunk removed
    assert not sign_ok(forged, client.alipay_public)


def test_stream_tool_call_chunk(client: Client) -> None:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}}}}
    events, _ = read_stream(_stream(client, "lookup q=rates", tools=[tool]))
    call = json.loads(events[0].data)["choices"][0]["delta"]["tool_calls"][0]
    assert call["index"] == 0 and call["function"] == {"name": "lookup", "arguments": '{"q":"rates"}'}
    assert json.loads(events[-2].data)["choices"][0]["finish_reason"] == "tool_calls"
    assert sign_ok(events, client.alipay_public)


def test_refusal_before_streaming_is_plain_json(client: Client) -> None:
    resp = client.post(client.params(CHAT, chat_biz("forecast my income", stream=True)))
    assert resp.headers["content-type"].startswith("application/json")
    assert client.verify(CHAT, resp)["sub_code"] == "AI.COMPLIANCE_REJECTED"


def test_cert_mode_stream_sign_event_names_cert(cert_client: Client) -> None:
    resp = cert_client.post(cert_client.params(CHAT, chat_biz("cert stream", stream=True)))
    events, _ = read_stream(resp)
    sn = json.loads(events[-1].data)["alipay_cert_sn"]
    assert sign_ok(events, cert_client.ring(sn))
