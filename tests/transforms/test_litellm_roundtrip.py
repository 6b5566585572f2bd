"""The transforms' output through real ``litellm.completion`` / ``embedding`` calls (no network: a
tiny in-test CustomLLM returns what the transforms build from scripted gateway nodes/chunks)."""

from __future__ import annotations

import json

import litellm
import pytest
from litellm import CustomLLM

from litellm_alipay.transforms import (
    StreamTransformer,
    chat_model_response,
    embedding_response,
)

PROVIDER = "alipay-transforms-test"

NODE = {
    "code": "10000", "msg": "Success", "trace_id": "0b1c2d3e", "model": "x", "created": 1700000000,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "你好，世界 🌏 繁體"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12, "input_chars": 9,
              "output_chars": 10},
    "actions": [{"action": "REFUND", "status": "SUCCESS", "out_request_no": "r1", "trade_no": "t1",
                 "amount": "1.00", "currency": "CNY"}],
}

TEXT_STREAM = [
    {"trace_id": "tr-1", "model": "x", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
    {"trace_id": "tr-1", "model": "x", "choices": [{"index": 0, "delta": {"content": "你好"}}]},
    {"trace_id": "tr-1", "model": "x", "choices": [{"index": 0, "delta": {"content": "，世界 🌏"}}]},
    {"trace_id": "tr-1", "model": "x", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
     "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7, "input_chars": 2,
               "output_chars": 6}},
]


def _tc(index, id=None, name=None, args=""):
    call = {"index": index, "type": "function", "function": {"arguments": args}}
    if id:
        call["id"] = id
    if name:
        call["function"]["name"] = name
    return call


TOOL_STREAM = [
    {"trace_id": "tr-2", "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
        _tc(0, "call_a", "get_weather", '{"city": "'), _tc(1, "call_b", "get_time", "{")]}}]},
    {"trace_id": "tr-2", "choices": [{"index": 0, "delta": {"tool_calls": [
        _tc(0, args='杭州"}'), _tc(1, args='"tz": "Asia/Shanghai"}')]}}]},
    {"trace_id": "tr-2", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
     "usage": {"prompt_tokens": 11, "completion_tokens": 13, "total_tokens": 24}},
]


class ScriptedLLM(CustomLLM):
    def __init__(self) -> None:
        super().__init__()
        self.stream: list[dict] = []
        self.embed_nodes: list[dict] = []

    def completion(self, *args, **kwargs):
        return chat_model_response(json.loads(json.dumps(NODE)), kwargs["model_response"], kwargs["model"])

    async def acompletion(self, *args, **kwargs):
        return self.completion(*args, **kwargs)

    def streaming(self, *args, **kwargs):
        transformer = StreamTransformer()
        for chunk in self.stream:
            yield from transformer.chunks(chunk)

    async def astreaming(self, *args, **kwargs):
        transformer = StreamTransformer()
        for chunk in self.stream:
            for out in transformer.chunks(chunk):
                yield out

    def embedding(self, *args, **kwargs):
        return embedding_response(self.embed_nodes, kwargs["model_response"], kwargs["model"])

    async def aembedding(self, *args, **kwargs):
        return self.embedding(*args, **kwargs)


@pytest.fixture
def handler():
    handler = ScriptedLLM()
    saved = list(litellm.custom_provider_map)
    litellm.custom_provider_map = [*saved, {"provider": PROVIDER, "custom_handler": handler}]
    litellm._custom_providers = list({*litellm._custom_providers, PROVIDER})
    try:
        yield handler
    finally:
        litellm.custom_provider_map = saved
        litellm._custom_providers = [p for p in litellm._custom_providers if p != PROVIDER]


MESSAGES = [{"role": "user", "content": "hi"}]


def _check_response(response):
    message = response.choices[0].message
    assert message.content == "你好，世界 🌏 繁體"
    assert response.choices[0].finish_reason == "stop"
    assert response.id == "chatcmpl-0b1c2d3e"
    assert response.created == 1700000000
    assert response.model == "x"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.total_tokens) \
        == (7, 5, 12)
    fields = message.provider_specific_fields
    assert fields["trace_id"] == "0b1c2d3e"
    assert fields["actions"][0]["action"] == "REFUND"
    assert (fields["input_chars"], fields["output_chars"]) == (9, 10)
    hidden = response._hidden_params["alipay"]
    assert hidden == {
        "trace_id": "0b1c2d3e", "actions": NODE["actions"], "input_chars": 9, "output_chars": 10,
    }


def test_completion_keeps_provider_fields(handler):
    _check_response(litellm.completion(model=f"{PROVIDER}/x", messages=MESSAGES))


async def test_acompletion_keeps_provider_fields(handler):
    _check_response(await litellm.acompletion(model=f"{PROVIDER}/x", messages=MESSAGES))


def _collect_sync(**kw):
    return list(litellm.completion(model=f"{PROVIDER}/x", messages=MESSAGES, stream=True, **kw))


async def _collect_async(**kw):
    stream = await litellm.acompletion(model=f"{PROVIDER}/x", messages=MESSAGES, stream=True, **kw)
    return [chunk async for chunk in stream]


def _text(chunks):
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_text_stream(handler, mode):
    handler.stream = TEXT_STREAM
    kw = {"stream_options": {"include_usage": True}}
    chunks = _collect_sync(**kw) if mode == "sync" else await _collect_async(**kw)
    assert _text(chunks) == "你好，世界 🌏"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    usages = [c.usage for c in chunks if getattr(c, "usage", None)]
    assert usages and (usages[-1].prompt_tokens, usages[-1].completion_tokens, usages[-1].total_tokens) \
        == (3, 4, 7)
    assert getattr(chunks[0], "trace_id", None) == "tr-1"
    built = litellm.stream_chunk_builder(chunks, messages=MESSAGES)
    assert built.choices[0].message.content == "你好，世界 🌏"
    assert built.usage.total_tokens == 7


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_tool_call_stream(handler, mode):
    handler.stream = TOOL_STREAM
    kw = {"stream_options": {"include_usage": True}}
    chunks = _collect_sync(**kw) if mode == "sync" else await _collect_async(**kw)
    built = litellm.stream_chunk_builder(chunks, messages=MESSAGES)
    calls = built.choices[0].message.tool_calls
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("call_a", "get_weather", {"city": "杭州"}),
        ("call_b", "get_time", {"tz": "Asia/Shanghai"}),
    ]
    assert built.choices[0].finish_reason == "tool_calls"
    assert built.usage.total_tokens == 24


EMBED_NODES = [
    {"code": "10000", "trace_id": f"e{k}", "model": "emb",
     "data": [{"index": j, "embedding": [float(32 * k + j)]} for j in range(n)],
     "usage": {"prompt_tokens": n, "total_tokens": n, "input_chars": 2 * n}}
    for k, n in enumerate([32, 32, 6])
]


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_embedding_roundtrip(handler, mode):
    handler.embed_nodes = EMBED_NODES
    inputs = [f"文本 {i}" for i in range(70)]
    if mode == "sync":
        response = litellm.embedding(model=f"{PROVIDER}/emb", input=inputs)
    else:
        response = await litellm.aembedding(model=f"{PROVIDER}/emb", input=inputs)
    assert [d["index"] for d in response.data] == list(range(70))
    assert [d["embedding"][0] for d in response.data] == [float(i) for i in range(70)]
    assert response.usage.prompt_tokens == 70 and response.usage.total_tokens == 70
    assert response.model == "emb"
    assert response._hidden_params["alipay"]["trace_ids"] == ["e0", "e1", "e2"]


# OpenAI-style: finish in one chunk, usage alone in the next; and text + tool call in one chunk
SPLIT_STREAM = [
    {"trace_id": "tr-3", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "查询中…",
                                                            "tool_calls": [_tc(0, "c1", "lookup", '{"q":')]}}]},
    {"trace_id": "tr-3", "choices": [{"index": 0, "delta": {"tool_calls": [_tc(0, args=' "台北"}')]}}]},
    {"trace_id": "tr-3", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    {"trace_id": "tr-3", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}},
]


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_split_usage_and_mixed_chunk_stream(handler, mode):
    handler.stream = SPLIT_STREAM
    kw = {"stream_options": {"include_usage": True}}
    chunks = _collect_sync(**kw) if mode == "sync" else await _collect_async(**kw)
    assert getattr(chunks[0], "trace_id", None) == "tr-3"
    built = litellm.stream_chunk_builder(chunks, messages=MESSAGES)
    assert built.choices[0].message.content == "查询中…"
    call = built.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == ("c1", "lookup", {"q": "台北"})
    assert built.choices[0].finish_reason == "tool_calls"
    assert built.usage.total_tokens == 3
