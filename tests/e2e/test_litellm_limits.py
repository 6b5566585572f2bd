"""What docs/models.md says LiteLLM and Alipay cannot do, checked so the documentation fails when it goes stale."""

from __future__ import annotations

import litellm
import pytest

ASK = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("param", [{"n": 2}, {"seed": 7}, {"logprobs": True}, {"parallel_tool_calls": False}])
def test_unsupported_openai_params_are_refused_by_name(deployment, alipay_emulator, param):
    with pytest.raises(litellm.UnsupportedParamsError) as info:
        litellm.completion(model="alipay/ant-fin-chat", messages=ASK, **param, **deployment)
    assert repr(next(iter(param))) in str(info.value) and "drop_params" in str(info.value)
    reply = litellm.completion(model="alipay/ant-fin-chat", messages=ASK, drop_params=True, **param, **deployment)
    assert reply.choices[0].message.content == "You said: hi"
    assert alipay_emulator.stats()["requests_total"] == 1  # the refused call never left


@pytest.mark.parametrize("param", [{"dimensions": 8}, {"encoding_format": "float"}])
def test_litellm_itself_refuses_embedding_params_for_custom_providers(deployment, param):
    with pytest.raises(litellm.UnsupportedParamsError, match="is not supported by alipay"):
        litellm.embedding(model="alipay/ant-fin-embed", input=["x"], **param, **deployment)
    dropped = litellm.embedding(model="alipay/ant-fin-embed", input=["x"], drop_params=True, **param, **deployment)
    assert len(dropped.data[0]["embedding"]) == 256  # dropped before the provider: the gateway's default size
