"""B2: batching, validation, reassembly."""

from __future__ import annotations

import litellm
import pytest
from litellm.types.utils import EmbeddingResponse

from litellm_alipay.transforms import MAX_INPUT_CHARS, embed_biz_contents, embedding_response
from litellm_alipay.wire.protocol import EMBED_BATCH


def test_single_string():
    assert embed_biz_contents("e1", "你好", {}) == [{"model": "e1", "input": ["你好"]}]


def test_seventy_inputs_three_batches_in_order():
    inputs = [f"句子 {i} 🌏" for i in range(70)]
    batches = embed_biz_contents("e1", inputs, {"dimensions": 256, "user": "u1"})
    assert EMBED_BATCH == 32
    assert [len(b["input"]) for b in batches] == [32, 32, 6]
    assert [s for b in batches for s in b["input"]] == inputs
    assert all(b["model"] == "e1" and b["dimensions"] == 256 and b["user_id"] == "u1" for b in batches)


def test_exactly_one_batch():
    assert len(embed_biz_contents("e1", ["x"] * 32, {})) == 1
    assert len(embed_biz_contents("e1", ["x"] * 33, {})) == 2


@pytest.mark.parametrize(("params", "expected"), [
    ({}, {}),
    ({"encoding_format": "float"}, {}),
    ({"encoding_format": None, "dimensions": None}, {}),
    ({"dimensions": 64}, {"dimensions": 64}),
    ({"user_id": "u2"}, {"user_id": "u2"}),
    ({"user": "u1", "user_id": "u2"}, {"user_id": "u2"}),
    ({"max_retries": 0, "timeout": 5}, {}),
])
def test_params(params, expected):
    assert embed_biz_contents("e1", ["a"], params) == [{"model": "e1", "input": ["a"], **expected}]


@pytest.mark.parametrize("params", [{"encoding_format": "base64"}, {"temperature": 0.1}])
def test_unsupported_params(params):
    with pytest.raises(litellm.UnsupportedParamsError) as info:
        embed_biz_contents("e1", ["a"], params)
    assert repr(next(iter(params))) in str(info.value) and "drop_params" in str(info.value)
    assert embed_biz_contents("e1", ["a"], params, drop_params=True) == [{"model": "e1", "input": ["a"]}]


def test_ignore():
    out = embed_biz_contents("e1", "a", {"app_id": "1"}, ignore=["app_id"])
    assert out == [{"model": "e1", "input": ["a"]}]


@pytest.mark.parametrize(("input", "message"), [
    ([], "input must be a non-empty"),
    ("", "input[0] is empty"),
    (None, "input must be a non-empty"),
    ([1, 2, 3], "input[0] is token ids"),
    ([[1, 2], [3]], "input[0] is token ids"),
    (["ok", 5], "input[1] is token ids"),
    (["ok", None], "input[1] is NoneType"),
    (["ok", "", "x"], "input[1] is empty"),
    (["ok", "x" * (MAX_INPUT_CHARS + 1)], f"input[1] has {MAX_INPUT_CHARS + 1} characters"),
])
def test_bad_input(input, message):
    with pytest.raises(litellm.BadRequestError) as info:
        embed_biz_contents("e1", input, {}, drop_params=True)
    assert message in str(info.value)
    assert not isinstance(info.value, litellm.UnsupportedParamsError)


def test_max_length_accepted():
    assert embed_biz_contents("e1", ["字" * MAX_INPUT_CHARS], {})[0]["input"][0] == "字" * MAX_INPUT_CHARS


@pytest.mark.parametrize(("params", "field"), [({"dimensions": 0}, "dimensions"), ({"user": 3}, "user")])
def test_bad_param_values(params, field):
    with pytest.raises(litellm.BadRequestError) as info:
        embed_biz_contents("e1", "a", params)
    assert field in str(info.value)


def node(k, n, shuffled=False, model="emb-v1"):
    data = [{"index": j, "embedding": [float(EMBED_BATCH * k + j), 0.5]} for j in range(n)]
    if shuffled:
        data.reverse()
    return {"code": "10000", "msg": "Success", "trace_id": f"t{k}", "model": model, "data": data,
            "usage": {"prompt_tokens": n * 2, "total_tokens": n * 2, "input_chars": n * 3}}


def test_reassembly_with_global_indices():
    nodes = [node(0, 32), node(1, 32, shuffled=True), node(2, 6)]
    given = EmbeddingResponse()
    r = embedding_response(nodes, given, "requested")
    assert r is given
    assert [d["index"] for d in r.data] == list(range(70))
    assert [d["embedding"][0] for d in r.data] == [float(i) for i in range(70)]
    assert all(d["object"] == "embedding" for d in r.data)
    assert r.object == "list" and r.model == "emb-v1"
    assert (r.usage.prompt_tokens, r.usage.total_tokens, r.usage.completion_tokens) == (140, 140, 0)
    assert r._hidden_params["alipay"] == {
        "trace_id": "t0", "trace_ids": ["t0", "t1", "t2"], "input_chars": 210,
    }


def test_single_node_model_fallback():
    n = node(0, 1, model=None)
    r = embedding_response([n], EmbeddingResponse(), "requested")
    assert r.model == "requested" and len(r.data) == 1 and r.usage.total_tokens == 2
