"""Protocol variants end to end against the emulator: AES content encryption, GBK, RSA (SHA-1), v3 streams."""

import base64
import os

import litellm
import pytest

from litellm_alipay.emulator.demo_keys import DEMO_APP_ID
from litellm_alipay.emulator.process import EmulatorProcess

ASK = [{"role": "user", "content": "余额多少？ 餘額多少？ balance?"}]
ANSWER = "You said: 余额多少？ 餘額多少？ balance?"
AES_KEY = base64.b64encode(os.urandom(16)).decode()


@pytest.fixture(scope="module")
def variant_emulator(tmp_path_factory):
    """The demo app registered again with an AES key, and a second app that signs with legacy RSA."""
    keys_dir = tmp_path_factory.mktemp("variants") / "keys"
    public = str(keys_dir / "app_public_key.pem")
    config = {"apps": [
        {"app_id": DEMO_APP_ID, "app_public_key": public, "encrypt_key": AES_KEY},
        {"app_id": "2021000000000077", "app_public_key": public, "sign_type": "RSA"},
    ]}
    with EmulatorProcess(config, keys_dir=keys_dir) as emulator:
        yield emulator


def _settings(emulator, **over):
    return {"app_id": DEMO_APP_ID, "app_private_key": emulator.app_private_key_path,
            "alipay_public_key": emulator.alipay_public_key_path, "api_base": emulator.gateway_url, **over}


def test_aes_encrypted_biz_content_and_response(variant_emulator):
    reply = litellm.completion(model="alipay/ant-fin-chat", messages=ASK,
                               **_settings(variant_emulator, encrypt_key=AES_KEY))
    assert reply.choices[0].message.content == ANSWER
    emb = litellm.embedding(model="alipay/ant-fin-embed", input=["加密"],
                            **_settings(variant_emulator, encrypt_key=AES_KEY))
    assert len(emb.data) == 1


def test_wrong_aes_key_is_refused(variant_emulator):
    wrong = base64.b64encode(os.urandom(16)).decode()
    with pytest.raises(litellm.BadRequestError):
        litellm.completion(model="alipay/ant-fin-chat", messages=ASK, **_settings(variant_emulator, encrypt_key=wrong))


def test_gbk_charset_round_trips_simplified_and_traditional(variant_emulator):
    reply = litellm.completion(model="alipay/ant-fin-chat", messages=ASK,
                               **_settings(variant_emulator, charset="GBK", encrypt_key=AES_KEY))
    assert reply.choices[0].message.content == ANSWER


def test_legacy_rsa_sign_type(variant_emulator):
    reply = litellm.completion(model="alipay/ant-fin-chat", messages=ASK,
                               **_settings(variant_emulator, app_id="2021000000000077", sign_type="RSA"))
    assert reply.choices[0].message.content == ANSWER


async def test_v3_stream_is_verified(alipay_emulator):
    settings = {"app_id": alipay_emulator.app_id, "app_private_key": alipay_emulator.app_private_key_path,
                "alipay_public_key": alipay_emulator.alipay_public_key_path, "api_base": alipay_emulator.gateway_url,
                "protocol": "v3"}
    stream = await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, stream=True, **settings)
    assert "".join([c.choices[0].delta.content or "" async for c in stream]) == ANSWER
    assert alipay_emulator.stats()["requests_by_method"].get("alipay.cloud.ai.chat") == 1
