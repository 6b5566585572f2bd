"""LiteLLM's own gate, through the real proxy on the shipped config and real clients: a wrong, missing or
malformed key is a JSON 401 and a client-sent ``api_base`` a JSON 400 naming it — not 400 "No connected db."
or a plain-text 500 from a ``prisma`` import (``proxy_refusals.py``)."""

from __future__ import annotations

import httpx
import openai
import pytest

from .proxy_process import MASTER_KEY

HELLO = {"model": "fin-chat", "messages": [{"role": "user", "content": "hello"}]}


def _client(proxy, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key=key, max_retries=0, timeout=60)


def test_a_wrong_key_is_a_401_that_says_which_key_works(proxy, alipay_emulator):
    with pytest.raises(openai.AuthenticationError) as info:
        _client(proxy, "sk-not-the-master-key").chat.completions.create(**HELLO)
    assert info.value.status_code == 401
    assert "only its master key" in info.value.message and "No connected db" not in info.value.message
    assert alipay_emulator.stats()["requests_total"] == 0


@pytest.mark.parametrize("headers", [{}, {"Authorization": MASTER_KEY}])  # none; no "Bearer " prefix
def test_a_missing_or_malformed_key_is_a_json_401(proxy, alipay_emulator, headers):
    answer = httpx.post(f"{proxy.base_url}/v1/chat/completions", json=HELLO, headers=headers, timeout=60)
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["error"]["message"].startswith("Authentication Error")


def test_a_client_api_base_is_a_400_naming_it(proxy, alipay_emulator):
    with pytest.raises(openai.BadRequestError) as info:
        _client(proxy, MASTER_KEY).chat.completions.create(**HELLO, extra_body={"api_base": "http://127.0.0.9:1"})
    assert info.value.status_code == 400
    assert "api_base is a deployment setting and cannot be sent by a client" in info.value.message
    assert alipay_emulator.stats()["requests_total"] == 0


def test_the_master_key_and_a_models_own_errors_are_unchanged(proxy, alipay_emulator):
    client = _client(proxy, MASTER_KEY)
    assert client.chat.completions.create(**HELLO).choices[0].message.content == "You said: hello"
    with pytest.raises(openai.BadRequestError) as info:  # refused by the provider after LiteLLM let it in
        client.chat.completions.create(**HELLO, extra_body={"app_id": "2021000000009999"})
    assert "app_id" in info.value.message and "deployment setting" in info.value.message
