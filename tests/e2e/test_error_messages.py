"""Errors that name the setting and the fix: through the real proxy (past LiteLLM's secret masking), at the
proxy's start-up, and for the two misconfigurations the gateway can only hint at (wrong key halves)."""

from __future__ import annotations

import litellm
import openai
import pytest

from litellm_alipay.backends.diagnosis import STREAK
from litellm_alipay.wire.signing import generate_private_key, private_key_forms

from .proxy_process import ROOT, ProxyProcess, openai_client, proxy_env

ASK = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def broken_proxy(alipay_emulator_process, tmp_path_factory):
    missing = tmp_path_factory.mktemp("keys") / "app_private_key.pem"  # never written
    env = proxy_env(alipay_emulator_process, ALIPAY_APP_PRIVATE_KEY=str(missing))
    proc = ProxyProcess(ROOT / "config" / "litellm.yaml", env)
    yield proc, missing
    proc.stop()


def test_proxy_warns_at_start_up_naming_each_broken_deployment(broken_proxy):
    proc, missing = broken_proxy
    warnings = [line for line in proc.output if "litellm-alipay: deployment" in line]
    assert [w for w in warnings if "fin-chat (alipay/ant-fin-chat" in w]
    assert [w for w in warnings if "fin-embed (alipay/ant-fin-embed" in w]
    assert all("'app_private_key' file not found: " + str(missing) in w for w in warnings)
    assert not [w for w in warnings if "general-chat" in w]  # not an Alipay deployment


def test_missing_key_file_survives_secret_masking_through_the_proxy(broken_proxy, alipay_emulator):
    proc, missing = broken_proxy
    with pytest.raises(openai.BadRequestError) as info:
        openai_client(proc).chat.completions.create(model="fin-chat-lite", messages=ASK)
    message = str(info.value)
    # LiteLLM masks every value the config reads from the environment (here the path) but no longer the
    # setting's name: the message says which setting and what is wrong
    assert "setting 'app_private_key' file not found: " in message
    assert "app_REDACTED" not in message and "give an existing file" in message
    assert alipay_emulator.stats()["requests_total"] == 0  # nothing was sent


def test_missing_key_file_in_process_names_setting_and_path(deployment, tmp_path):
    path = tmp_path / "nowhere" / "app_private_key.pem"
    with pytest.raises(litellm.BadRequestError) as info:
        litellm.completion(model="alipay/ant-fin-chat", messages=ASK, **{**deployment, "app_private_key": str(path)})
    assert f"setting 'app_private_key' file not found: {path}" in str(info.value)
    assert "neither PEM" not in str(info.value)


def test_signature_refusal_points_at_the_private_key_and_the_check_command(deployment, alipay_emulator):
    other = private_key_forms(generate_private_key())["private_pem"]  # not the key registered for the app
    with pytest.raises(litellm.AuthenticationError) as info:
        litellm.completion(model="alipay/ant-fin-chat", messages=ASK, **{**deployment, "app_private_key": other})
    message = str(info.value)
    assert "isv.invalid-signature" in message and "app_private_key" in message
    assert "litellm-alipay check --app-public-key" in message
    assert "BEGIN" not in message  # the key text never


def test_consistent_verification_failures_name_alipay_public_key(deployment, alipay_emulator):
    wrong = private_key_forms(generate_private_key())["public_pem"]  # not Alipay's key
    settings = {**deployment, "alipay_public_key": wrong, "breaker_threshold": 100}  # keep the breaker out
    messages = []
    for _ in range(STREAK):
        with pytest.raises(litellm.BadGatewayError) as info:
            litellm.completion(model="alipay/ant-fin-chat", messages=ASK, **settings)
        messages.append(str(info.value))
    assert "alipay_public_key" not in messages[0]  # one failure may be a fault on the way
    assert f"{STREAK} responses in a row failed verification" in messages[-1]
    assert "alipay_public_key is probably not Alipay's public key" in messages[-1]
    reply = litellm.completion(model="alipay/ant-fin-chat", messages=ASK, **deployment)
    assert reply.choices[0].message.content == "You said: hello"  # the right key verifies again
