"""Interop with a client nobody here wrote: the official alipay-sdk-python.

Only ``WebUtils.get_http_connection`` is replaced (it drops the port of a local gateway URL); the SDK's
own request building, signing, response parsing and response verification are used unchanged.
The SDK stamps ``datetime.now()`` (host-local time) as the timestamp, so the test runs with the
host zone set to Beijing time, as a deployment of the SDK must be.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import httpx
import pytest
from alipay.aop.api.AlipayClientConfig import AlipayClientConfig
from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient
from alipay.aop.api.util import WebUtils

from litellm_alipay.emulator.process import EmulatorProcess
from litellm_alipay.wire import protocol
from litellm_alipay.wire.signing import (
    generate_private_key,
    load_private_key,
    load_public_key,
    private_key_forms,
    verify_response,
)


class AiChatRequest:
    """The smallest request class DefaultAlipayClient accepts, for alipay.cloud.ai.chat."""

    need_encrypt = False

    def __init__(self, biz: dict) -> None:
        self.biz = biz

    def get_params(self) -> dict:
        return {
            "method": protocol.METHOD_CHAT, "version": "1.0",
            "biz_content": json.dumps(self.biz, ensure_ascii=False, sort_keys=True, separators=(",", ":")),
        }

    def get_multipart_params(self) -> dict:
        return {}


def _connection_keeping_port(url: str, query_string: str, timeout: int):
    parsed = urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port or 80, timeout=timeout)
    return f"{parsed.scheme}://{parsed.hostname}:{parsed.port}{parsed.path}?{query_string}", conn


@pytest.fixture
def sdk_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(WebUtils, "get_http_connection", _connection_keeping_port)
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _client(emu: EmulatorProcess, private_key=None) -> DefaultAlipayClient:
    cfg = AlipayClientConfig()
    cfg.server_url = emu.gateway_url
    cfg.app_id = emu.app_id
    cfg.app_private_key = private_key_forms(private_key or load_private_key(emu.app_private_key))["private_pkcs1"]
    cfg.alipay_public_key = private_key_forms_public(emu)
    return DefaultAlipayClient(cfg)


def private_key_forms_public(emu: EmulatorProcess) -> str:
    """The Alipay public key as the console's bare base64 (what the SDK expects)."""
    pem = emu.alipay_public_key
    return "".join(line for line in pem.splitlines() if "-----" not in line)


def test_sdk_calls_emulator_and_verifies_its_response(alipay_emulator: EmulatorProcess, sdk_env: None) -> None:
    client = _client(alipay_emulator)
    biz = {"model": "ant-fin-chat", "messages": [{"role": "user", "content": "来自官方 SDK & co"}]}
    text = client.execute(AiChatRequest(biz))  # raises if the emulator's signature does not verify
    node = json.loads(text)
    assert node["code"] == "10000"
    assert node["choices"][0]["message"]["content"] == "You said: 来自官方 SDK & co"
    assert alipay_emulator.stats()["successes"] == 1


def test_sdk_signed_request_is_accepted(alipay_emulator: EmulatorProcess, sdk_env: None) -> None:
    query = _client(alipay_emulator).sdk_execute(
        AiChatRequest({"model": "ant-fin-chat", "messages": [{"role": "user", "content": "signed by sdk"}]})
    )
    resp = httpx.post(alipay_emulator.gateway_url, content=query.encode(),
                      headers={"content-type": protocol.form_content_type("utf-8")})
    node = verify_response(resp.content, protocol.METHOD_CHAT, load_public_key(alipay_emulator.alipay_public_key))
    assert protocol.is_success(node)
    assert node["choices"][0]["message"]["content"] == "You said: signed by sdk"


def test_sdk_request_with_wrong_key_is_rejected(alipay_emulator: EmulatorProcess, sdk_env: None) -> None:
    client = _client(alipay_emulator, generate_private_key())
    text = client.execute(AiChatRequest({"model": "ant-fin-chat", "messages": [{"role": "user", "content": "x"}]}))
    node = json.loads(text)  # the SDK verified the emulator's signed error_response
    assert (node["code"], node["sub_code"]) == ("40002", "isv.invalid-signature")
    assert alipay_emulator.stats()["rejections"] == {"isv.invalid-signature": 1}
