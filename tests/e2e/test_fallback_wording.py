"""What a client reads after the Router has had its say, through the real proxy on the shipped config:
a client's own 400 carries no advice to add a fallback (``expose_router_debug_in_errors: false``), and an
answer after a fallback says which group answered (LiteLLM keeps the answering model in ``model``;
docs/proxy-errors.md)."""

from __future__ import annotations

import openai
import pytest

from .proxy_process import openai_client


def test_a_clients_400_carries_no_router_advice(proxy, alipay_emulator):
    with pytest.raises(openai.BadRequestError) as info:
        openai_client(proxy).embeddings.create(model="fin-embed", input=[""])
    message = info.value.message
    assert "input[0] is empty" in message
    assert "Add a fallbacks entry" not in message and "Fallbacks are configured for" not in message


def test_after_a_fallback_the_headers_name_the_group_that_answered(proxy, alipay_emulator):
    alipay_emulator.set_faults([{"kind": "http_5xx", "methods": ["alipay.cloud.ai.chat"]}])
    try:
        raw = openai_client(proxy).chat.completions.with_raw_response.create(
            model="fin-chat", messages=[{"role": "user", "content": "hello"}])
    finally:
        alipay_emulator.clear_faults()
    reply = raw.parse()
    assert reply.choices[0].message.content == "You said: hello"
    assert int(raw.headers["x-litellm-attempted-fallbacks"]) >= 1  # fin-chat-lite fails the same way
    assert raw.headers["x-litellm-model-group"] == "ling-flash"  # the group that answered …
    assert reply.model == "Ling-2.6-flash"  # … and LiteLLM's `model`: the answering model, not "fin-chat"
