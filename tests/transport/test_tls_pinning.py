"""TLS exactly as configured (issue 22): ``ssl_verify`` naming the gateway's own self-signed certificate pins
it. That certificate is accepted; a certificate from a CA the environment trusts (``SSL_CERT_FILE``) is
refused while pinned — the MITM the review found h1 accepting — and so is the pinned certificate under
another host's name. Through ``litellm`` against the real emulator behind a TLS terminator we run; on
refusal nothing reaches the emulator."""

from __future__ import annotations

from urllib.parse import urlsplit

import litellm
import pytest

from .net_helpers import make_ca, make_self_signed, tls_terminator

ASK = [{"role": "user", "content": "hello"}]
REPLY = "You said: hello"


def _chat_count(emulator) -> int:
    return emulator.stats()["requests_by_method"].get("alipay.cloud.ai.chat", 0)


async def _ask(**deployment) -> str:
    reply = await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, **deployment)
    return reply.choices[0].message.content


def _ask_sync(**deployment) -> str:
    return litellm.completion(model="alipay/ant-fin-chat", messages=ASK, **deployment).choices[0].message.content


@pytest.fixture
def upstream(alipay_emulator):
    return urlsplit(alipay_emulator.base_url).port


async def test_pinned_self_signed_certificate_is_accepted(deployment, upstream, tmp_path, no_proxy_env):
    pinned = make_self_signed(tmp_path / "gw")
    with tls_terminator(pinned, upstream) as tls:
        settings = {**deployment, "api_base": f"https://127.0.0.1:{tls.port}/gateway.do",
                    "ssl_verify": str(pinned.ca_path)}
        assert await _ask(**settings) == REPLY
        assert _ask_sync(**settings) == REPLY


async def test_mitm_certificate_from_a_trusted_ca_is_refused_while_pinned(deployment, upstream, alipay_emulator,
                                                                        tmp_path, no_proxy_env):
    pinned = make_self_signed(tmp_path / "gw")
    mitm = make_ca(tmp_path / "mitm")  # a CA the environment trusts, and a valid 127.0.0.1 certificate from it
    no_proxy_env.setenv("SSL_CERT_FILE", str(mitm.ca_path))
    before = _chat_count(alipay_emulator)
    with tls_terminator(mitm, upstream) as tls:
        trusting_env = {**deployment, "api_base": f"https://127.0.0.1:{tls.port}/gateway.do"}
        assert await _ask(**trusting_env) == REPLY  # the MITM certificate is good for the environment's trust
        pinned_deployment = {**trusting_env, "ssl_verify": str(pinned.ca_path)}
        for attempt in (_ask(**pinned_deployment), None):
            with pytest.raises(litellm.APIConnectionError) as info:
                if attempt is not None:
                    await attempt
                else:
                    _ask_sync(**pinned_deployment)
            assert "not trusted" in str(info.value) and "ssl_verify" in str(info.value)
    assert _chat_count(alipay_emulator) == before + 1  # only the unpinned call got through


async def test_pinned_certificate_under_another_name_is_refused(deployment, upstream, alipay_emulator, tmp_path,
                                                               no_proxy_env):
    other = make_self_signed(tmp_path / "other", "gateway.example")  # pinned, but not for 127.0.0.1
    before = _chat_count(alipay_emulator)
    with tls_terminator(other, upstream) as tls:
        settings = {**deployment, "api_base": f"https://127.0.0.1:{tls.port}/gateway.do",
                    "ssl_verify": str(other.ca_path)}
        with pytest.raises(litellm.APIConnectionError) as info:
            await _ask(**settings)
    assert "not trusted" in str(info.value) and "127.0.0.1" in str(info.value)  # OpenSSL names the mismatch
    assert _chat_count(alipay_emulator) == before
