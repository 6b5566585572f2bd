"""LiteLLM's overhead header for ``alipay/`` deployments through the real proxy on the shipped config: the
provider records its upstream exchange time (``transport/timing.py``), so the proxy computes
``x-litellm-overhead-duration-ms`` for the Alipay gateway and Ant Ling as it does for ``openai/``."""

from __future__ import annotations

import math

import pytest

from .proxy_process import openai_client

ASK = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def client(proxy, alipay_emulator):
    return openai_client(proxy)


def _overhead_ms(raw) -> float:
    value = float(raw.headers["x-litellm-overhead-duration-ms"])  # "None" when nothing was recorded
    assert math.isfinite(value) and value >= 0
    assert value <= float(raw.headers["x-litellm-response-duration-ms"])
    return value


@pytest.mark.parametrize("model", ["fin-chat", "ling-flash"])  # the Alipay gateway, Ant Ling
def test_chat_has_litellms_overhead_header(client, model):
    raw = client.chat.completions.with_raw_response.create(model=model, messages=ASK)
    assert raw.parse().choices[0].message.content == "You said: hello there"
    _overhead_ms(raw)


def test_embeddings_have_it_too(client):
    raw = client.embeddings.with_raw_response.create(model="fin-embed", input=["hello", "there"])
    assert len(raw.parse().data) == 2
    _overhead_ms(raw)
