"""B3 chunks → GenericStreamingChunk dicts: text, tool-call deltas, finish, usage, trace id."""

from __future__ import annotations

import pytest

from litellm_alipay.transforms import StreamTransformer


def run(*b3):
    t = StreamTransformer()
    return [[dict(c) for c in t.chunks(chunk)] for chunk in b3], t


def delta(index=0, finish=None, **d):
    choice = {"index": index, "delta": d}
    if finish:
        choice["finish_reason"] = finish
    return choice


def call(index, id=None, name=None, args=None):
    c = {"index": index, "type": "function", "function": {}}
    if id:
        c["id"] = id
    if name:
        c["function"]["name"] = name
    if args is not None:
        c["function"]["arguments"] = args
    return c


USAGE = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12, "input_chars": 8, "output_chars": 9}


def test_role_only_chunk_yields_nothing():
    (out,), _ = run({"trace_id": "t", "choices": [delta(role="assistant")]})
    assert out == []


def test_text_chunks_and_final_usage():
    outs, t = run(
        {"trace_id": "t1", "choices": [delta(role="assistant")]},
        {"trace_id": "t1", "choices": [delta(content="你好")]},
        {"trace_id": "t1", "choices": [delta(content="世界")]},
        {"trace_id": "t1", "choices": [delta(finish="stop")], "usage": USAGE},
    )
    assert outs[0] == []
    assert outs[1] == [{"text": "你好", "tool_use": None, "is_finished": False, "finish_reason": "",
                        "usage": None, "index": 0, "provider_specific_fields": {"trace_id": "t1"}}]
    assert outs[2] == [{"text": "世界", "tool_use": None, "is_finished": False, "finish_reason": "",
                        "usage": None, "index": 0}]
    assert outs[3] == [{
        "text": "", "tool_use": None, "is_finished": True, "finish_reason": "stop", "index": 0,
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
        "provider_specific_fields": {"trace_id": "t1", "input_chars": 8, "output_chars": 9},
    }]
    assert t.finished and t.trace_id == "t1"


def test_text_and_finish_in_one_chunk():
    (out,), _ = run({"trace_id": "t", "choices": [delta(content="end", finish="length")], "usage": USAGE})
    assert len(out) == 1
    assert out[0]["text"] == "end" and out[0]["is_finished"] and out[0]["finish_reason"] == "length"
    assert out[0]["usage"]["total_tokens"] == 12
    assert out[0]["provider_specific_fields"]["trace_id"] == "t"


def test_usage_in_separate_chunk_after_finish():
    outs, _ = run(
        {"trace_id": "t", "choices": [delta(content="a")]},
        {"trace_id": "t", "choices": [delta(finish="stop")]},
        {"trace_id": "t", "choices": [], "usage": USAGE},
    )
    assert outs[1][0]["is_finished"] and outs[1][0]["usage"] is None and outs[1][0]["finish_reason"] == "stop"
    assert outs[2][0]["is_finished"] and outs[2][0]["finish_reason"] == "stop"
    assert outs[2][0]["usage"] == {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}


def test_usage_without_total():
    usage = {"prompt_tokens": 2, "completion_tokens": 3}
    (out,), _ = run({"choices": [delta(finish="stop")], "usage": usage})
    assert out[0]["usage"]["total_tokens"] == 5


@pytest.mark.parametrize(("raw", "expected"), [
    ("stop", "stop"), ("length", "length"), ("tool_calls", "tool_calls"),
    ("content_filter", "content_filter"),
])
def test_finish_reasons(raw, expected):
    (out,), _ = run({"choices": [delta(finish=raw)]})
    assert out[0]["finish_reason"] == expected and out[0]["is_finished"]


def test_actions_on_final_chunk():
    actions = [{"action": "REFUND", "status": "SUCCESS"}]
    (out,), _ = run({"trace_id": "t", "choices": [delta(finish="stop")], "usage": USAGE, "actions": actions})
    assert out[0]["provider_specific_fields"]["actions"] == actions


def test_tool_call_deltas_one_per_chunk():
    outs, _ = run(
        {"trace_id": "t", "choices": [delta(role="assistant", tool_calls=[
            call(0, "call_a", "weather", '{"city":'), call(1, "call_b", "time", "")])]},
        {"trace_id": "t", "choices": [delta(tool_calls=[call(0, args='"杭州"}'), call(1, args="{}")])]},
        {"trace_id": "t", "choices": [delta(finish="tool_calls")], "usage": USAGE},
    )
    uses = [[c["tool_use"] for c in out] for out in outs]
    assert uses[0] == [
        {"id": "call_a", "type": "function", "index": 0,
         "function": {"name": "weather", "arguments": '{"city":'}},
        {"id": "call_b", "type": "function", "index": 1, "function": {"name": "time", "arguments": ""}},
    ]
    assert uses[1] == [
        {"id": None, "type": "function", "index": 0, "function": {"name": None, "arguments": '"杭州"}'}},
        {"id": None, "type": "function", "index": 1, "function": {"name": None, "arguments": "{}"}},
    ]
    assert [c["is_finished"] for out in outs for c in out] == [False, False, False, False, True]
    assert outs[2][0]["finish_reason"] == "tool_calls"
    assert outs[0][0]["provider_specific_fields"] == {"trace_id": "t"}
    assert "provider_specific_fields" not in outs[0][1]


def test_text_and_tool_call_in_one_chunk():
    (out,), _ = run({"choices": [delta(content="let me check", tool_calls=[call(0, "c0", "f", "{}"),
                                                                            call(1, "c1", "g", "{}")])]})
    assert [(c["text"], c["tool_use"]["id"]) for c in out] == [("let me check", "c0"), ("", "c1")]


def test_tool_call_and_finish_in_one_chunk_finishes_on_last():
    (out,), _ = run({"choices": [delta(tool_calls=[call(0, "c0", "f", "{}"), call(1, "c1", "g", "{}")],
                                       finish="tool_calls")], "usage": USAGE})
    assert [c["is_finished"] for c in out] == [False, True]
    assert out[1]["usage"]["total_tokens"] == 12 and out[0]["usage"] is None


def test_missing_id_is_generated_and_stable():
    outs, _ = run(
        {"trace_id": "tr", "choices": [delta(tool_calls=[call(0, name="f", args="{")])]},
        {"trace_id": "tr", "choices": [delta(tool_calls=[call(0, args="}")])]},
    )
    assert outs[0][0]["tool_use"]["id"] == "call_tr_0_0"
    assert outs[1][0]["tool_use"]["id"] is None and outs[1][0]["tool_use"]["index"] == 0


def test_calls_keyed_by_id_when_index_missing():
    first = {"id": "x1", "type": "function", "function": {"name": "f", "arguments": "{"}}
    second = {"id": "x2", "type": "function", "function": {"name": "g", "arguments": "{"}}
    outs, _ = run({"choices": [delta(tool_calls=[first, second])]},
                  {"choices": [delta(tool_calls=[{"id": "x2", "function": {"arguments": "}"}}])]})
    assert [c["tool_use"]["index"] for c in outs[0]] == [0, 1]
    assert outs[1][0]["tool_use"]["index"] == 1 and outs[1][0]["tool_use"]["id"] is None


def test_gateway_index_is_remapped_densely():
    (out,), _ = run({"choices": [delta(tool_calls=[call(3, "c3", "f", "{}")])]})
    assert out[0]["tool_use"]["index"] == 0


def test_independent_streams_do_not_share_state():
    a, b = StreamTransformer(), StreamTransformer()
    a.chunks({"trace_id": "ta", "choices": [delta(tool_calls=[call(0, "c", "f", "{")])]})
    out = b.chunks({"trace_id": "tb", "choices": [delta(tool_calls=[call(0, "d", "g", "{")])]})
    assert out[0]["tool_use"]["id"] == "d" and out[0]["provider_specific_fields"] == {"trace_id": "tb"}


@pytest.mark.parametrize("text", ["简体中文", "繁體中文", "👨‍👩‍👧‍👦🇨🇳", "𠀀"])
def test_text_round_trip(text):
    (out,), _ = run({"choices": [delta(content=text)]})
    assert out[0]["text"] == text
