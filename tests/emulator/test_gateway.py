"""v2 gateway: signed success responses and every rejection path, verified with verify_response."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from litellm_alipay.emulator.process import EmulatorProcess
from litellm_alipay.wire import protocol
from litellm_alipay.wire.signing import BEIJING, beijing_timestamp, generate_private_key

from .helpers import CHAT, EMBED, Client, chat_biz


def test_chat_success_is_signed_node(client: Client) -> None:
    resp, node = client.call(CHAT, chat_biz("hello & = world"))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    assert protocol.is_success(node)
    assert node["choices"][0]["message"] == {"role": "assistant", "content": "You said: hello & = world"}
    assert node["choices"][0]["finish_reason"] == "stop"
    assert node["model"] == "ant-fin-chat" and node["trace_id"]
    assert "alipay_cert_sn" not in resp.json()


def test_query_and_body_are_merged_whatever_the_split(client: Client) -> None:
    signed = protocol.sign_request(client.params(CHAT, chat_biz("all in body")), client.key)
    from urllib.parse import quote, urlencode

    resp = client.http.post(client.emu.gateway_url, content=urlencode(signed, quote_via=quote).encode(),
                            headers={"content-type": protocol.form_content_type("utf-8")})
    node = client.verify(CHAT, resp)
    assert node["choices"][0]["message"]["content"] == "You said: all in body"


def test_certificate_mode_response_names_alipay_cert_sn(cert_client: Client) -> None:
    resp, node = cert_client.call(CHAT, chat_biz("cert"))
    assert protocol.is_success(node)
    assert resp.json()["alipay_cert_sn"] in cert_client.ring


def _reject(client: Client, params: dict[str, str], sign: bool = True) -> dict:
    resp = client.post(params, sign=sign)
    assert resp.status_code == 200
    node = client.verify(params.get("method") or CHAT, resp)
    assert "_unsigned" not in node  # gateway errors are signed too
    assert "error_response" in resp.json()
    return node


def test_missing_app_id(client: Client) -> None:
    params = client.params(CHAT, chat_biz("x"))
    del params["app_id"]
    node = _reject(client, params)
    assert (node["code"], node["sub_code"]) == ("40001", "isv.missing-app-id")


def test_unknown_app_id(client: Client) -> None:
    node = _reject(client, {**client.params(CHAT, chat_biz("x")), "app_id": "2021999999999999"})
    assert (node["code"], node["sub_code"]) == ("40002", "isv.invalid-app-id")


def test_missing_signature(client: Client) -> None:
    node = _reject(client, client.params(CHAT, chat_biz("x")), sign=False)
    assert (node["code"], node["sub_code"]) == ("40001", "isv.missing-signature")


def test_wrong_key_signature(alipay_emulator: EmulatorProcess) -> None:
    intruder = Client(alipay_emulator, key=generate_private_key())
    node = _reject(intruder, intruder.params(CHAT, chat_biz("x")))
    assert (node["code"], node["sub_code"]) == ("40002", "isv.invalid-signature")
    assert alipay_emulator.stats()["rejections"] == {"isv.invalid-signature": 1}


def test_tampered_parameter_fails_signature(client: Client) -> None:
    signed = protocol.sign_request(client.params(CHAT, chat_biz("pay 1")), client.key)
    signed["biz_content"] = signed["biz_content"].replace("pay 1", "pay 9")
    node = _reject(client, signed, sign=False)
    assert node["sub_code"] == "isv.invalid-signature"


def test_sign_type_other_than_registered(client: Client) -> None:
    node = _reject(client, client.params(CHAT, chat_biz("x"), sign_type="RSA"))
    assert (node["code"], node["sub_code"]) == ("40002", "isv.invalid-signature-type")


@pytest.mark.parametrize("delta", [timedelta(hours=8), timedelta(hours=-1), timedelta(minutes=16)])
def test_timestamp_too_far_from_beijing_time(client: Client, delta: timedelta) -> None:
    ts = beijing_timestamp(datetime.now(BEIJING) + delta)
    node = _reject(client, client.params(CHAT, chat_biz("x"), timestamp=ts))
    assert (node["code"], node["sub_code"]) == ("40002", "isv.invalid-timestamp")


def test_malformed_timestamp(client: Client) -> None:
    node = _reject(client, client.params(CHAT, chat_biz("x"), timestamp="2024/05/13 17:49"))
    assert node["sub_code"] == "isv.invalid-timestamp"


def test_unknown_method(client: Client) -> None:
    node = _reject(client, client.params("alipay.cloud.ai.dance", chat_biz("x")))
    assert (node["code"], node["sub_code"]) == ("40002", "isv.invalid-method")


def test_missing_method(client: Client) -> None:
    params = client.params(CHAT, chat_biz("x"))
    del params["method"]
    node = _reject(client, params)
    assert (node["code"], node["sub_code"]) == ("40001", "isv.missing-method")


@pytest.mark.parametrize(
    "biz",
    ["{not json", "[1,2]", json.dumps({"messages": [{"role": "user", "content": "no model"}]}),
     json.dumps({"model": "ant-fin-chat", "messages": []}),
     json.dumps({"model": "ant-fin-chat", "messages": [{"role": "robot", "content": "x"}]}),
     json.dumps({"model": "ant-fin-chat", "messages": [{"role": "user", "content": "x"}],
                 "out_request_no": "x" * 65})],
)
def test_malformed_biz_content(client: Client, biz: str) -> None:
    resp, node = client.call(CHAT, biz)
    assert resp.status_code == 200
    assert (node["code"], node["sub_code"]) == ("40002", "AI.INVALID_REQUEST")
    assert protocol.response_node_name(CHAT) in resp.json()  # a method-level refusal


def test_malformed_embed_input(client: Client) -> None:
    _, node = client.call(EMBED, {"model": "ant-fin-embed", "input": ["x"] * 33})
    assert node["sub_code"] == "AI.INVALID_REQUEST"


def test_cert_mode_checks_app_cert_sn(cert_client: Client) -> None:
    node = _reject(cert_client, cert_client.params(CHAT, chat_biz("x"), app_cert_sn="0" * 32))
    assert (node["code"], node["sub_code"]) == ("40002", "isv.invalid-app-cert-sn")


def test_cert_mode_checks_root_cert_sn(cert_client: Client) -> None:
    node = _reject(cert_client, cert_client.params(CHAT, chat_biz("x"), alipay_root_cert_sn="abc"))
    assert (node["code"], node["sub_code"]) == ("40002", "isv.invalid-alipay-root-cert-sn")


def test_cert_mode_requires_app_cert_sn(alipay_emulator: EmulatorProcess) -> None:
    bare = Client(alipay_emulator, app_id=alipay_emulator.cert_app_id)  # cert app, no SNs sent
    node = _reject(bare, bare.params(CHAT, chat_biz("x")))
    assert (node["code"], node["sub_code"]) == ("40001", "isv.missing-app-cert-sn")


def test_rejections_are_counted_by_reason(client: Client) -> None:
    client.post(client.params(CHAT, chat_biz("x")), sign=False)
    client.post(client.params("alipay.nope", chat_biz("x")))
    client.call(CHAT, chat_biz("x", model="gpt-4"))
    stats = client.emu.stats()
    assert stats["rejections"] == {
        "isv.missing-signature": 1, "isv.invalid-method": 1, "AI.MODEL_NOT_FOUND": 1,
    }
    assert stats["requests_by_app"] == {client.app_id: 3}
