"""The A2M headers (pure): encoding both ways, the eight signed fields, the seller signature — checked
with the official SDK's own verify function."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from alipay.aop.api.util.SignatureUtils import verify_with_rsa

from litellm_alipay.errors import ProtocolError
from litellm_alipay.payments.agent import headers
from litellm_alipay.wire.signing import generate_private_key, private_key_forms

KEY = generate_private_key()


def _bill(**over: str) -> headers.Bill:
    fields = {"out_trade_no": "ORDER_1744721077123", "amount": "0.01", "resource_id": "/demo/a2m/resource",
              "pay_before": "2026-04-15T12:54:37+08:00", "goods_name": "AI 生成内容服务",
              "service_id": "api_mock_service_id", "seller_id": "2088000000000001",
              "seller_app_id": "2021000000000001", "seller_name": "测试商户"}
    return headers.Bill(**{**fields, **over})


def test_sign_content_is_the_references_example():
    assert headers.sign_content(_bill().fields()) == (
        "amount=0.01&currency=CNY&goods_name=AI 生成内容服务&out_trade_no=ORDER_1744721077123"
        "&pay_before=2026-04-15T12:54:37+08:00&resource_id=/demo/a2m/resource&seller_id=2088000000000001"
        "&service_id=api_mock_service_id")
    assert headers.sign_content({**_bill().fields(), "goods_name": " "}).count("goods_name") == 0


def test_payment_needed_is_base64url_json_and_verifies_with_the_official_sdk():
    value = _bill().header(KEY)
    assert "=" not in value and "+" not in value and "/" not in value
    raw = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("utf-8"))
    assert "测试商户" in base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("utf-8")  # raw UTF-8
    assert set(raw) == {"protocol", "method"}
    assert raw["protocol"]["seller_sign_type"] == "RSA2"
    assert raw["protocol"]["seller_unique_id"] == raw["method"]["seller_id"]
    assert raw["method"]["seller_unique_id_key"] == "seller_id"
    public = private_key_forms(KEY)["public"]  # the bare base64 the console shows
    content = headers.sign_content(headers.signed_fields(raw)).encode("utf-8")
    assert verify_with_rsa(public, content, raw["protocol"]["seller_signature"])
    assert headers.verify_bill(raw, KEY.public_key())
    raw["protocol"]["amount"] = "0.02"
    assert not headers.verify_bill(raw, KEY.public_key())


def test_proof_decodes_either_alphabet_with_or_without_padding():
    proof = headers.Proof("2026120622000000000000000000001", "ab" * 32, "c2Vzc2lvbg==")
    value = proof.header()
    standard = base64.b64encode(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))).decode()
    for form in (value, standard, f'"{value}"'):
        parsed = headers.parse_proof(form)
        assert (parsed.trade_no, parsed.payment_proof, parsed.client_session) == (proof.trade_no, "ab" * 32,
                                                                                  "c2Vzc2lvbg==")
    assert "ab" * 32 not in repr(parsed)


@pytest.mark.parametrize("value", ["", "not base64!", headers.encode({"protocol": {"trade_no": "1"}}),
                                   headers.encode({"protocol": {"payment_proof": "x"}}),
                                   base64.b64encode(b"[1, 2]").decode(), "A" * 9000])
def test_a_malformed_proof_is_a_protocol_error_naming_the_header(value):
    with pytest.raises(ProtocolError, match="Payment-Proof"):
        headers.parse_proof(value)


def test_pay_before_has_seconds_and_the_beijing_offset():
    text = headers.pay_before(datetime(2026, 4, 15, 4, 24, 37, 123456, tzinfo=UTC), 1800)
    assert text == "2026-04-15T12:54:37+08:00"
    assert headers.parse_pay_before(text).timestamp() == datetime(2026, 4, 15, 4, 54, 37, tzinfo=UTC).timestamp()
    with pytest.raises(ProtocolError, match="offset"):
        headers.parse_pay_before("2026-04-15T12:54:37")
