"""B1 response node → ModelResponse: ids, finish reasons, tool calls, usage, provider fields."""

from __future__ import annotations

import copy

import pytest
from litellm.types.utils import ChatCompletionMessageToolCall, ModelResponse

from litellm_alipay.transforms import chat_model_response

NODE = {
    "code": "10000", "msg": "Success", "trace_id": "tr-9", "model": "qwen-alipay", "created": 1710000000,
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "好的 👍"}, "finish_reason": "stop"},
    ],
    "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13, "input_chars": 20,
              "output_chars": 4},
    "actions": [{"action": "REFUND", "status": "FAILED", "out_request_no": "o1", "trade_no": "t1",
                 "amount": "12.50", "currency": "CNY", "error_code": "PAYER_ACCOUNT_INVALID"}],
}


def text_choice(content, finish="stop"):
    return [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}]


def convert(**changes):
    node = copy.deepcopy(NODE)
    node.update(changes)
    return chat_model_response(node, ModelResponse(), "requested")


def test_basic_fields():
    r = convert()
    assert r.id == "chatcmpl-tr-9"
    assert r.created == 1710000000
    assert r.model == "qwen-alipay"
    assert r.object == "chat.completion"
    assert r.choices[0].message.content == "好的 👍"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.tool_calls is None


def test_fills_given_object_in_place():
    given = ModelResponse()
    assert chat_model_response(copy.deepcopy(NODE), given, "m") is given


def test_missing_trace_model_created_fall_back():
    given = ModelResponse()
    original_id = given.id
    r = chat_model_response({"choices": NODE["choices"], "usage": NODE["usage"]}, given, "requested")
    assert r.id == original_id and r.model == "requested" and r.created > 1_700_000_000


@pytest.mark.parametrize(("raw", "expected"), [
    ("stop", "stop"), ("length", "length"), ("tool_calls", "tool_calls"),
    ("content_filter", "content_filter"), (None, "stop"), ("", "stop"), ("weird", "stop"),
])
def test_finish_reasons(raw, expected):
    r = convert(choices=text_choice("x", raw))
    assert r.choices[0].finish_reason == expected


def test_tool_calls():
    calls = [
        {"id": "call_1", "type": "function", "function": {"name": "refund", "arguments": '{"金额": "1.00"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "noop", "arguments": None}},
    ]
    r = convert(choices=[{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": calls},
                          "finish_reason": "tool_calls"}])
    got = r.choices[0].message.tool_calls
    assert all(isinstance(c, ChatCompletionMessageToolCall) for c in got)
    assert [(c.id, c.type, c.function.name, c.function.arguments) for c in got] == [
        ("call_1", "function", "refund", '{"金额": "1.00"}'), ("call_2", "function", "noop", ""),
    ]
    assert r.choices[0].message.content is None
    assert r.choices[0].finish_reason == "tool_calls"


def test_tool_calls_without_finish_reason_mean_tool_calls():
    calls = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    r = convert(choices=[{"index": 0, "message": {"role": "assistant", "tool_calls": calls}}])
    assert r.choices[0].finish_reason == "tool_calls"


def test_usage():
    u = convert().usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (10, 3, 13)
    u = convert(usage={"prompt_tokens": 4, "completion_tokens": 6}).usage
    assert u.total_tokens == 10
    u = convert(usage=None).usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (0, 0, 0)


def test_provider_fields():
    r = convert()
    expected = {"trace_id": "tr-9", "actions": NODE["actions"], "input_chars": 20, "output_chars": 4}
    assert r.choices[0].message.provider_specific_fields == expected
    assert r._hidden_params["alipay"] == expected


def test_no_actions_is_empty_list():
    r = convert(actions=None)
    assert r.choices[0].message.provider_specific_fields["actions"] == []
    assert r._hidden_params["alipay"]["actions"] == []


def test_hidden_params_not_shared_between_responses():
    a, b = ModelResponse(), ModelResponse()
    chat_model_response(copy.deepcopy(NODE), a, "m")
    assert "alipay" not in (b._hidden_params or {})


def test_existing_hidden_params_kept():
    given = ModelResponse()
    given._hidden_params = {"response_cost": 0.5}
    r = chat_model_response(copy.deepcopy(NODE), given, "m")
    assert r._hidden_params["response_cost"] == 0.5 and "alipay" in r._hidden_params


def test_several_choices_keep_order_and_index():
    choices = [{"index": i, "message": {"role": "assistant", "content": str(i)}, "finish_reason": "stop"}
               for i in range(3)]
    r = convert(choices=choices)
    assert [(c.index, c.message.content) for c in r.choices] == [(0, "0"), (1, "1"), (2, "2")]


@pytest.mark.parametrize("text", ["简体：支付宝", "繁體：支付寶", "🧧🇨🇳👨‍👩‍👧", "\u3000\u200b\\n"])
def test_content_round_trip(text):
    r = convert(choices=text_choice(text))
    assert r.choices[0].message.content == text
