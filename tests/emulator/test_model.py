"""The deterministic model through the signed gateway: exact text, tools, media, refusals, usage."""

from __future__ import annotations

import base64
import math

from litellm_alipay.emulator.model import count_tokens, embedding

from .helpers import CHAT, EMBED, Client

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}},
}}


def test_answer_and_usage_are_exact(client: Client) -> None:
    node = client.chat("你好 world")
    content = node["choices"][0]["message"]["content"]
    assert content == "You said: 你好 world"
    assert node["usage"] == {
        "prompt_tokens": 3 + count_tokens("你好 world"), "completion_tokens": count_tokens(content),
        "total_tokens": 3 + count_tokens("你好 world") + count_tokens(content),
        "input_chars": len("你好 world"), "output_chars": len(content),
    }
    assert count_tokens("你好 world") == 2 + 2


def test_same_prompt_same_answer(client: Client) -> None:
    a, b = client.chat("repeat me"), client.chat("repeat me")
    assert a["choices"] == b["choices"] and a["usage"] == b["usage"]
    assert a["trace_id"] != b["trace_id"]


def test_tool_call_when_offered_and_named(client: Client) -> None:
    node = client.chat("please get_weather city=Hangzhou days=3", tools=[WEATHER])
    choice = node["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Hangzhou","days":3}'}
    assert call["id"].startswith("call_")


def test_no_tool_call_when_not_asked_or_none(client: Client) -> None:
    assert client.chat("what is up", tools=[WEATHER])["choices"][0]["finish_reason"] == "stop"
    plain = client.chat("get_weather city=X", tools=[WEATHER], tool_choice="none")
    assert plain["choices"][0]["message"]["content"] == "You said: get_weather city=X"
    forced = client.chat("anything", tools=[WEATHER], tool_choice="required")
    assert forced["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"


def test_tool_result_is_echoed(client: Client) -> None:
    messages = [
        {"role": "user", "content": "get_weather city=Hangzhou"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 25C"},
    ]
    _, node = client.call(CHAT, {"model": "ant-fin-chat", "messages": messages, "tools": [WEATHER]})
    assert node["choices"][0]["message"]["content"] == "Tool result: sunny, 25C"


def test_image_and_audio_parts_acknowledged(client: Client) -> None:
    png, wav = base64.b64encode(b"\x89PNG1234").decode(), base64.b64encode(b"RIFF" * 10).decode()
    content = [
        {"type": "text", "text": "what is this"},
        {"type": "image", "image_url": "https://example.com/a.png"},
        {"type": "image", "image_base64": png, "mime_type": "image/png"},
        {"type": "audio", "audio_base64": wav, "format": "wav"},
    ]
    _, node = client.call(CHAT, {"model": "ant-fin-chat-lite", "messages": [{"role": "user", "content": content}]})
    assert node["choices"][0]["message"]["content"] == (
        "You said: what is this [image 1: https://example.com/a.png] [image 2: image/png, 8 bytes] "
        "[audio 1: wav, 40 bytes]"
    )
    assert node["usage"]["prompt_tokens"] == 3 + count_tokens("what is this") + 85 * 2 + 100


def test_json_stop_and_max_tokens(client: Client) -> None:
    assert client.chat("hi", response_format={"type": "json_object"})["choices"][0]["message"]["content"] \
        == '{"answer": "You said: hi"}'
    assert client.chat("one two. three", stop=["."])["choices"][0]["message"]["content"] == "You said: one two"
    cut = client.chat("a b c d e f", max_tokens=3)["choices"][0]
    assert (cut["message"]["content"], cut["finish_reason"]) == ("You said: a", "length")


def test_income_forecast_is_compliance_rejected(client: Client) -> None:
    for text in ("Can you forecast my income for 2025?", "请帮我预测明年的收入"):
        node = client.chat(text)
        assert (node["code"], node["sub_code"]) == ("40004", "AI.COMPLIANCE_REJECTED")


def test_context_length_exceeded(client: Client) -> None:
    node = client.chat("x" * 32001)
    assert (node["code"], node["sub_code"]) == ("40004", "AI.CONTEXT_LENGTH_EXCEEDED")
    assert client.chat("x" * 31990)["code"] == "10000"


def test_unknown_model(client: Client) -> None:
    node = client.chat("hi", model="gpt-4o")
    assert (node["code"], node["sub_code"]) == ("40004", "AI.MODEL_NOT_FOUND")
    _, node = client.call(EMBED, {"model": "ant-fin-chat", "input": ["x"]})
    assert node["sub_code"] == "AI.MODEL_NOT_FOUND"


def test_embeddings_deterministic_unit_norm_in_order(client: Client) -> None:
    _, node = client.call(EMBED, {"model": "ant-fin-embed", "input": ["alpha", "beta", "alpha"]})
    vectors = [d["embedding"] for d in node["data"]]
    assert [d["index"] for d in node["data"]] == [0, 1, 2]
    assert vectors[0] == vectors[2] != vectors[1]
    assert len(vectors[0]) == 256
    assert math.isclose(sum(v * v for v in vectors[1]), 1.0, rel_tol=1e-9)
    assert vectors[0] == embedding("alpha", 256)
    assert node["usage"] == {"prompt_tokens": 5, "total_tokens": 5, "input_chars": 14}
    _, small = client.call(EMBED, {"model": "ant-fin-embed", "input": ["alpha"], "dimensions": 8})
    assert len(small["data"][0]["embedding"]) == 8
