"""The Ant Ling request quirks and answer shapes, on the pure transform (no I/O)."""

import json

import litellm
import pytest
from litellm.types.utils import ModelResponse

from litellm_alipay.catalogue import ant_ling_spec
from litellm_alipay.transforms import ant_ling as t

RING, LING3, LING26 = ant_ling_spec("Ring-2.6-1T"), ant_ling_spec("Ling-3.0-flash"), ant_ling_spec("Ling-2.6-flash")
ASK = [{"role": "user", "content": "hi"}]


def body(spec, params, messages=ASK, **kw):
    return t.chat_request(spec.id, spec, messages, params, **kw)


def test_developer_role_is_sent_as_system_and_unknown_message_keys_are_not_sent():
    sent = body(LING26, {}, [{"role": "developer", "content": "be brief", "cache_control": {"type": "x"}},
                             {"role": "user", "content": "hi"}])
    assert sent["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


def test_max_completion_tokens_is_sent_as_max_tokens_and_store_never():
    sent = body(LING26, {"max_completion_tokens": 64, "store": True, "user": "u1"})
    assert sent["max_tokens"] == 64
    assert "max_completion_tokens" not in sent and "store" not in sent and "user" not in sent


@pytest.mark.parametrize(("given", "sent"), [(1.7, 1.0), (1, 1), (0.3, 0.3), (-0.5, 0.0)])
def test_temperature_is_clamped_to_the_endpoint_range(given, sent):
    assert body(LING26, {"temperature": given})["temperature"] == sent


def test_top_p_above_one_is_clamped():
    assert body(LING26, {"top_p": 1.5})["top_p"] == 1.0


@pytest.mark.parametrize(("effort", "wire"), [
    ("minimal", "high"), ("low", "high"), ("medium", "high"), ("high", "high"), ("xhigh", "xhigh"),
    ("max", "xhigh"), ("none", None)])
def test_ring_reasoning_effort_maps_to_nested_reasoning(effort, wire):
    sent = body(RING, {"reasoning_effort": effort})
    assert sent.get("reasoning") == ({"effort": wire} if wire else None)
    assert "reasoning_effort" not in sent and "thinking" not in sent


@pytest.mark.parametrize(("effort", "kind"), [("none", "disabled"), ("low", "enabled"), ("xhigh", "enabled")])
def test_hybrid_ling3_reasoning_effort_maps_to_thinking_type(effort, kind):
    sent = body(LING3, {"reasoning_effort": effort})
    assert sent["thinking"] == {"type": kind} and "reasoning" not in sent


def test_anthropic_style_thinking_maps_too():
    assert body(LING3, {"thinking": {"type": "disabled"}})["thinking"] == {"type": "disabled"}
    assert body(RING, {"thinking": {"type": "enabled", "budget_tokens": 2048}})["reasoning"] == {"effort": "high"}


def test_reasoning_on_an_instant_model_follows_drop_params():
    with pytest.raises(litellm.UnsupportedParamsError, match="reasoning_effort"):
        body(LING26, {"reasoning_effort": "high"})
    sent = body(LING26, {"reasoning_effort": "high"}, drop_params=True)
    assert "reasoning" not in sent and "thinking" not in sent
    assert "reasoning" not in body(LING26, {"reasoning_effort": "none"})


def test_unknown_reasoning_effort_is_a_bad_request_naming_it():
    with pytest.raises(litellm.BadRequestError, match="reasoning_effort 'extreme'"):
        body(RING, {"reasoning_effort": "extreme"})


def test_unsupported_parameters_follow_drop_params():
    with pytest.raises(litellm.UnsupportedParamsError, match="presence_penalty"):
        body(LING26, {"presence_penalty": 0.5})
    assert "presence_penalty" not in body(LING26, {"presence_penalty": 0.5}, drop_params=True)
    assert "presence_penalty" not in body(LING26, {"presence_penalty": 0})  # the no-op default


def test_tools_search_and_response_format_pass_through():
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    sent = body(LING26, {"tools": tools, "tool_choice": "auto", "enable_search": True,
                         "search_options": {"forced_search": True}, "response_format": {"type": "json_object"}})
    assert sent["tools"] == tools and sent["tool_choice"] == "auto"
    assert sent["enable_search"] is True and sent["search_options"] == {"forced_search": True}
    assert sent["response_format"] == {"type": "json_object"}


def test_streaming_asks_for_usage():
    sent = body(LING26, {}, stream=True)
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_answer_keeps_reasoning_and_token_details():
    answer = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "Ring-2.6-1T",
              "choices": [{"index": 0, "finish_reason": "stop",
                           "message": {"role": "assistant", "content": "4", "reasoning": "2+2"}}],
              "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                        "prompt_tokens_details": {"cached_tokens": 4},
                        "completion_tokens_details": {"reasoning_tokens": 3}}}
    response = t.model_response(answer, ModelResponse())
    assert response.choices[0].message.content == "4"
    assert response.choices[0].message.reasoning_content == "2+2"
    assert response.usage.prompt_tokens_details.cached_tokens == 4
    assert response.usage.completion_tokens_details.reasoning_tokens == 3


def test_stream_reasoning_deltas_become_reasoning_content_chunks():
    stream = t.AntLingStream("Ring-2.6-1T")
    base = {"id": "c1", "object": "chat.completion.chunk", "model": "Ring-2.6-1T"}
    out = stream.all_chunks({**base, "choices": [{"index": 0, "delta": {"reasoning_content": "think "}}]})
    assert out[0].choices[0].delta.reasoning_content == "think "
    out = stream.all_chunks({**base, "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": None}]})
    assert out[0]["text"] == "ok"
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5,
             "completion_tokens_details": {"reasoning_tokens": 1}}
    t.stream_event(json.dumps({**base, "choices": [], "usage": usage}), "m")
    out = stream.all_chunks({**base, "choices": [], "usage": usage})
    assert out[-1]["usage"]["completion_tokens_details"] == {"reasoning_tokens": 1}
    assert stream.usage["total_tokens"] == 5
    assert t.stream_event("[DONE]", "m") is None


@pytest.mark.parametrize(("status", "message", "cls"), [
    (400, "Invalid Request Messages", litellm.BadRequestError),
    (400, "This request is longer than the model's context length (262144 tokens)",
     litellm.ContextWindowExceededError),
    (401, "Invalid API key", litellm.AuthenticationError),
    (404, "The model `x` does not exist", litellm.NotFoundError),
    (429, "Rate limit reached for requests", litellm.RateLimitError),
    (500, "server error", litellm.InternalServerError),
    (503, "The engine is currently overloaded", litellm.ServiceUnavailableError),
    (503, "Slow Down", litellm.ServiceUnavailableError),
])
def test_error_statuses_map_to_the_classes_the_router_acts_on(status, message, cls):
    exc = t.error_for_status(status, json.dumps({"error": {"message": message, "code": "c"}}).encode(), "m")
    assert type(exc) is cls and message in str(exc)
    assert exc.alipay_code == str(status) and exc.sub_code == "c"
    assert exc.slow_down is (message == "Slow Down")


def test_plain_text_error_bodies_are_reported_too():
    exc = t.error_for_status(502, b"Bad Gateway", "m")
    assert isinstance(exc, litellm.ServiceUnavailableError) and "Bad Gateway" in str(exc)
