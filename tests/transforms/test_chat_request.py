"""B1 request mapping: every param, every message and part kind, every refusal naming its field."""

from __future__ import annotations

import json

import litellm
import pytest

from litellm_alipay.transforms import LITELLM_INTERNAL_PARAMS, chat_biz_content

USER = [{"role": "user", "content": "hi"}]
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WAV = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA="
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "天气",
                                         "parameters": {"type": "object", "properties": {}}}}


def user(*parts):
    return {"role": "user", "content": list(parts)}


def biz(params=None, messages=USER, **kw):
    return chat_biz_content("m1", messages, params or {}, **kw)


# ------------------------------------------------------------------------------------------- params
@pytest.mark.parametrize(("params", "expected"), [
    ({}, {}),
    ({"temperature": 0.2}, {"temperature": 0.2}),
    ({"temperature": 0}, {"temperature": 0}),
    ({"top_p": 0.9}, {"top_p": 0.9}),
    ({"max_tokens": 100}, {"max_tokens": 100}),
    ({"max_completion_tokens": 50}, {"max_tokens": 50}),
    ({"max_tokens": 100, "max_completion_tokens": 50}, {"max_tokens": 50}),
    ({"stop": "END"}, {"stop": ["END"]}),
    ({"stop": ["a", "b"]}, {"stop": ["a", "b"]}),
    ({"stop": []}, {}),
    ({"tools": [TOOL]}, {"tools": [TOOL]}),
    ({"tools": [{"type": "function", "function": {"name": "f", "strict": True}}]},
     {"tools": [{"type": "function", "function": {"name": "f"}}]}),
    ({"tool_choice": "auto"}, {"tool_choice": "auto"}),
    ({"tool_choice": "none"}, {"tool_choice": "none"}),
    ({"tool_choice": "required"}, {"tool_choice": "required"}),
    ({"tool_choice": {"type": "function", "function": {"name": "f"}}},
     {"tool_choice": {"type": "function", "function": {"name": "f"}}}),
    ({"response_format": {"type": "json_object"}}, {"response_format": {"type": "json_object"}}),
    ({"response_format": {"type": "text"}}, {}),
    ({"stream": True}, {"stream": True}),
    ({"stream": False}, {}),
    ({"user": "u-1"}, {"user_id": "u-1"}),
    ({"user_id": "u-2"}, {"user_id": "u-2"}),
    ({"user": "u-1", "user_id": "u-2"}, {"user_id": "u-2"}),
    ({"out_request_no": "req-0001"}, {"out_request_no": "req-0001"}),
    ({"out_request_no": "x" * 64}, {"out_request_no": "x" * 64}),
    ({"allowed_actions": ["REFUND", "FREEZE_ACCOUNT"]}, {"allowed_actions": ["REFUND", "FREEZE_ACCOUNT"]}),
    ({"temperature": None, "tools": None, "seed": None}, {}),
    # OpenAI defaults that change nothing are accepted silently
    ({"n": 1, "logprobs": False, "presence_penalty": 0, "frequency_penalty": 0.0, "logit_bias": {},
      "parallel_tool_calls": True, "modalities": ["text"]}, {}),
    # LiteLLM internals are ignored
    ({"max_retries": 0, "stream_options": {"include_usage": True}, "timeout": 10, "metadata": {}}, {}),
])
def test_params(params, expected):
    assert biz(params) == {"model": "m1", "messages": USER, **expected}


def test_internal_params_documented():
    assert {"max_retries", "stream_options", "timeout", "extra_headers"} <= LITELLM_INTERNAL_PARAMS


def test_ignore_extra_keys():
    assert biz({"app_id": "2021", "temperature": 1}, ignore={"app_id"}) == {
        "model": "m1", "messages": USER, "temperature": 1,
    }


UNSUPPORTED = [
    ("n", 2), ("logprobs", True), ("top_logprobs", 3), ("presence_penalty", 0.5),
    ("frequency_penalty", -1), ("logit_bias", {"50256": -100}), ("seed", 42),
    ("parallel_tool_calls", False), ("audio", {"voice": "alloy", "format": "wav"}),
    ("modalities", ["text", "audio"]), ("prediction", {"type": "content", "content": "x"}),
    ("reasoning_effort", "low"), ("functions", [{"name": "f"}]), ("function_call", "auto"),
    ("service_tier", "flex"), ("web_search_options", {}), ("app_private_key", "secret-never-sent"),
]


@pytest.mark.parametrize(("name", "value"), UNSUPPORTED)
def test_unsupported_param_raises(name, value):
    with pytest.raises(litellm.UnsupportedParamsError) as info:
        biz({name: value, "temperature": 0.1})
    assert repr(name) in str(info.value) and "drop_params" in str(info.value)
    assert info.value.status_code == 400 and info.value.llm_provider == "alipay" and info.value.model == "m1"
    assert "secret-never-sent" not in str(info.value)


@pytest.mark.parametrize(("name", "value"), UNSUPPORTED)
def test_unsupported_param_dropped(name, value):
    assert biz({name: value, "temperature": 0.1}, drop_params=True) == {
        "model": "m1", "messages": USER, "temperature": 0.1,
    }


def test_unsupported_params_all_named():
    with pytest.raises(litellm.UnsupportedParamsError) as info:
        biz({"seed": 1, "n": 3})
    assert "['n', 'seed']" in str(info.value)


def test_unsupported_is_a_bad_request():
    with pytest.raises(litellm.BadRequestError):
        biz({"seed": 1})


BAD_PARAMS = [
    ({"temperature": "hot"}, "temperature"),
    ({"temperature": float("nan")}, "temperature"),
    ({"top_p": True}, "top_p"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_completion_tokens": 1.5}, "max_completion_tokens"),
    ({"stop": 3}, "stop"),
    ({"stop": ["a", 1]}, "stop"),
    ({"tools": {"type": "function"}}, "tools"),
    ({"tools": [{"type": "web_search"}]}, "tools[0].type 'web_search'"),
    ({"tools": [TOOL, {"type": "function"}]}, "tools[1].function"),
    ({"tools": [{"type": "function", "function": {"description": "x"}}]}, "tools[0].function.name"),
    ({"tool_choice": "any"}, "tool_choice"),
    ({"tool_choice": {"type": "function", "function": {}}}, "tool_choice.function.name"),
    ({"response_format": {"type": "xml"}}, "response_format.type 'xml'"),
    ({"response_format": "json"}, "response_format.type"),
    ({"user": 42}, "user"),
    ({"user_id": ""}, "user_id"),
    ({"out_request_no": "x" * 65}, "out_request_no"),
    ({"out_request_no": 12}, "out_request_no"),
    ({"allowed_actions": "REFUND"}, "allowed_actions"),
    ({"allowed_actions": [""]}, "allowed_actions"),
]


@pytest.mark.parametrize(("params", "field"), BAD_PARAMS)
def test_bad_param_values(params, field):
    with pytest.raises(litellm.BadRequestError) as info:
        biz(params, drop_params=True)
    assert not isinstance(info.value, litellm.UnsupportedParamsError)
    assert field in str(info.value)


# ----------------------------------------------------------------------------------------- messages
def one(message):
    return biz(messages=[message])["messages"][0]


@pytest.mark.parametrize(("message", "expected"), [
    ({"role": "system", "content": "be brief"}, {"role": "system", "content": "be brief"}),
    ({"role": "developer", "content": "be brief"}, {"role": "system", "content": "be brief"}),
    ({"role": "user", "content": "hi", "name": "bob"}, {"role": "user", "content": "hi"}),
    ({"role": "user", "content": ""}, {"role": "user", "content": ""}),
    ({"role": "assistant", "content": "ok"}, {"role": "assistant", "content": "ok"}),
    ({"role": "user", "content": [{"type": "text", "text": "看图"}]},
     {"role": "user", "content": [{"type": "text", "text": "看图"}]}),
    (user({"type": "image_url", "image_url": {"url": "https://x.cn/a.png", "detail": "low"}}),
     {"role": "user", "content": [{"type": "image", "image_url": "https://x.cn/a.png"}]}),
    ({"role": "user", "content": [{"type": "image_url", "image_url": "https://x.cn/b.jpg"}]},
     {"role": "user", "content": [{"type": "image", "image_url": "https://x.cn/b.jpg"}]}),
    (user({"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}),
     {"role": "user", "content": [{"type": "image", "image_base64": PNG, "mime_type": "image/png"}]}),
    ({"role": "user", "content": [{"type": "image_url", "image_url": f"data:image/JPEG;base64,{PNG}"}]},
     {"role": "user", "content": [{"type": "image", "image_base64": PNG, "mime_type": "image/jpeg"}]}),
    ({"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}}]},
     {"role": "user", "content": [{"type": "audio", "audio_base64": WAV, "format": "wav"}]}),
    ({"role": "user", "content": [{"type": "video_url", "video_url": {"url": "https://x.cn/v.mp4"}}]},
     {"role": "user", "content": [{"type": "video", "video_url": "https://x.cn/v.mp4"}]}),
    ({"role": "user", "content": [{"type": "video_url", "video_url": "https://x.cn/v.mp4"}]},
     {"role": "user", "content": [{"type": "video", "video_url": "https://x.cn/v.mp4"}]}),
    ({"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"城市": "台北"}'}}]},
     {"role": "assistant", "tool_calls": [
         {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"城市": "台北"}'}}]}),
    ({"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_1", "function": {"name": "f", "arguments": {"城市": "台北"}}}]},
     {"role": "assistant", "content": "", "tool_calls": [
         {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"城市":"台北"}'}}]}),
    ({"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f"}}]},
     {"role": "assistant", "tool_calls": [
         {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}),
    ({"role": "tool", "tool_call_id": "call_1", "content": "晴"},
     {"role": "tool", "tool_call_id": "call_1", "content": "晴"}),
    ({"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "晴，"},
                                                            {"type": "text", "text": "25°C"}]},
     {"role": "tool", "tool_call_id": "call_1", "content": "晴，25°C"}),
    ({"role": "tool", "tool_call_id": "call_1", "content": None},
     {"role": "tool", "tool_call_id": "call_1", "content": ""}),
])
def test_message_kinds(message, expected):
    assert one(message) == expected


def test_conversation_order_and_input_untouched():
    messages = [
        {"role": "developer", "content": "系統"},
        {"role": "user", "content": [{"type": "text", "text": "q"},
                                     {"type": "image_url", "image_url": {"url": "https://x.cn/a.png"}}]},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "r"},
    ]
    snapshot = json.dumps(messages)
    out = biz(messages=messages)["messages"]
    assert [m["role"] for m in out] == ["system", "user", "assistant", "tool"]
    assert json.dumps(messages) == snapshot


BAD_MESSAGES = [
    ([], "messages must be a non-empty list"),
    ("hi", "messages must be a non-empty list"),
    (["hi"], "messages[0] must be an object"),
    ([{"role": "function", "name": "f", "content": "x"}], "messages[0].role 'function' is not supported"),
    ([{"role": "bot", "content": "x"}], "messages[0].role 'bot' is not supported"),
    ([{"content": "x"}], "messages[0].role None is not supported"),
    ([{"role": "user"}], "messages[0].content is missing"),
    ([{"role": "user", "content": 5}], "messages[0].content must be a string or a list of parts"),
    ([{"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}}],
     "messages[0].function_call is not supported"),
    (USER + [{"role": "assistant", "content": "ok"},
             {"role": "user", "content": [{"type": "text", "text": "x"},
                                          {"type": "file", "file": {"file_id": "f"}}]}],
     "messages[2].content[1].type 'file' is not supported by Alipay"),
    ([{"role": "user", "content": ["x"]}], "messages[0].content[0] must be an object"),
    ([{"role": "user", "content": [{"type": "text"}]}], "messages[0].content[0].text must be a string"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/a.png"}}]}],
     "messages[0].content[0].image_url.url must be an http(s) URL"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
     "messages[0].content[0].image_url.url must be an http(s) URL"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": "data:image/png,abc"}]}],
     "messages[0].content[0].image_url is not a valid data URL"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64"}}]}],
     "messages[0].content[0].image_url.url is not a valid data URL"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:;base64,AAAA"}}]}],
     "messages[0].content[0].image_url.url is not a valid data URL"),
    ([user({"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}})],
     "messages[0].content[0].image_url.url is not valid base64"),
    ([{"role": "user", "content": [{"type": "image_url",
                                    "image_url": {"url": f"data:application/pdf;base64,{PNG}"}}]}],
     "messages[0].content[0].image_url.url has media type 'application/pdf'"),
    ([{"role": "user", "content": [{"type": "input_audio", "input_audio": {"format": "wav"}}]}],
     "messages[0].content[0].input_audio.data is missing"),
    ([{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": WAV}}]}],
     "messages[0].content[0].input_audio.format is missing"),
    ([{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "%%", "format": "wav"}}]}],
     "messages[0].content[0].input_audio.data is not valid base64"),
    ([{"role": "user", "content": [{"type": "input_audio", "input_audio": "x"}]}],
     "messages[0].content[0].input_audio must be an object"),
    ([{"role": "user", "content": [{"type": "video_url", "video_url": {"url": "file:///v.mp4"}}]}],
     "messages[0].content[0].video_url.url must be an http(s) URL"),
    (USER + [{"role": "tool", "content": "r"}], "messages[1].tool_call_id is missing"),
    (USER + [{"role": "tool", "tool_call_id": "", "content": "r"}], "messages[1].tool_call_id is missing"),
    ([{"role": "tool", "tool_call_id": "c", "content": [{"type": "image_url", "image_url": "https://x"}]}],
     "messages[0].content[0].type 'image_url' is not supported by Alipay in a tool message"),
    ([{"role": "tool", "tool_call_id": "c", "content": 3}], "messages[0].content must be a string"),
    ([{"role": "assistant", "tool_calls": {"id": "c"}}], "messages[0].tool_calls must be a list"),
    ([{"role": "assistant", "tool_calls": ["c"]}], "messages[0].tool_calls[0] must be an object"),
    ([{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f"}}]}],
     "messages[0].tool_calls[0].id is missing"),
    ([{"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {}}]}],
     "messages[0].tool_calls[0].type 'custom' is not supported"),
    ([{"role": "assistant", "tool_calls": [{"id": "c", "type": "function"}]}],
     "messages[0].tool_calls[0].function is missing"),
    ([{"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]}],
     "messages[0].tool_calls[0].function.name is missing"),
]


@pytest.mark.parametrize(("messages", "message"), BAD_MESSAGES)
def test_bad_messages_name_the_field(messages, message):
    with pytest.raises(litellm.BadRequestError) as info:
        biz(messages=messages, drop_params=True)
    assert message in str(info.value)
    assert info.value.status_code == 400 and info.value.llm_provider == "alipay"


# -------------------------------------------------------------------------------------------- text
TEXTS = [
    "简体中文：人工智能正在改变支付。",
    "繁體中文：人工智慧正在改變支付。",
    "emoji 👨‍👩‍👧‍👦 🇨🇳 🧧 ✅ and ZWJ",
    "混合 mixed \u3000全角空格\u200b零宽 \\n \"quotes\" & = %20 \\/ </script>",
    "𠀀𪚥 (astral CJK)",
]


@pytest.mark.parametrize("text", TEXTS)
def test_text_round_trips_exactly(text):
    content = biz(
        {"stop": text, "user": text},
        messages=[{"role": "system", "content": text},
                  {"role": "user", "content": [{"type": "text", "text": text}]},
                  {"role": "assistant", "content": None, "tool_calls": [
                      {"id": "c", "type": "function", "function": {"name": "f", "arguments": json.dumps(
                          {"q": text}, ensure_ascii=False)}}]},
                  {"role": "tool", "tool_call_id": "c", "content": text}],
    )
    assert content["messages"][0]["content"] == text
    assert content["messages"][1]["content"][0]["text"] == text
    assert json.loads(content["messages"][2]["tool_calls"][0]["function"]["arguments"]) == {"q": text}
    assert content["messages"][3]["content"] == text
    assert content["stop"] == [text] and content["user_id"] == text
    # and through the wire serialisation the adapter uses (ensure_ascii=False)
    wire = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    assert all(ch in wire for ch in text if ch not in '\\"')  # nothing escaped to \uXXXX
    assert json.loads(wire) == content
