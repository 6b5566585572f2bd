"""The pure rooms of payments: amounts, request numbers, notification signing, result classes."""

from __future__ import annotations

import pytest

from litellm_alipay.errors import ConfigurationError
from litellm_alipay.payments import wire
from litellm_alipay.payments.classify import SUB_CODES, ResultClass, classify
from litellm_alipay.payments.idempotency import check_idempotency_key, refund_request_no
from litellm_alipay.wire.signing import generate_private_key


@pytest.mark.parametrize(("given", "text"), [(12, "12.00"), (12.5, "12.50"), ("0.01", "0.01"), (" 7.1 ", "7.10"),
                                             ("100000000", "100000000.00")])
def test_amounts_are_two_decimal_strings(given, text) -> None:
    assert wire.amount(given) == text


@pytest.mark.parametrize("bad", ["1.001", "0", "-1", "abc", "", None, True, "100000000.01", "NaN", "1e400"])
def test_bad_amounts_name_the_field(bad) -> None:
    with pytest.raises(ConfigurationError) as refused:
        wire.amount(bad, "refund_amount")
    assert refused.value.setting == "refund_amount"


def test_request_numbers_are_stable_and_distinct() -> None:
    """From (app, scoped request, trade): never the amount, so a retry proposing another amount cannot make a
    new refund number."""
    one = refund_request_no("2021", "req-00000001", "T1")
    assert one == refund_request_no("2021", "req-00000001", "T1") and len(one) <= 64
    others = {refund_request_no(*args) for args in [("2022", "req-00000001", "T1"),
                                                    ("2021", "req-00000002", "T1"),
                                                    ("2021", "req-00000001", "T2")]}
    assert one not in others and len(others) == 3
    with pytest.raises(ConfigurationError) as short:
        check_idempotency_key("short")
    assert short.value.setting == "idempotency_key" and "short" not in str(short.value)


def test_notification_sign_content_leaves_out_sign_and_sign_type() -> None:
    key = generate_private_key()
    signed = wire.sign_notify({"b": "2", "a": "1", "charset": "utf-8"}, key)
    assert wire.notify_sign_content(signed) == "a=1&b=2&charset=utf-8"
    assert wire.verify_notify(signed, key.public_key())
    assert not wire.verify_notify({**signed, "sign_type": "RSA"}, key.public_key())  # its own hash only
    assert not wire.verify_notify({**signed, "a": "9"}, key.public_key())


@pytest.mark.parametrize(("node", "method", "expected"), [
    ({"code": "10000", "fund_change": "Y"}, wire.REFUND, ResultClass.SUCCEEDED),
    ({"code": "10000", "fund_change": "N"}, wire.REFUND, ResultClass.NEEDS_CONFIRMATION),
    ({"code": "10000"}, wire.REFUND, ResultClass.NEEDS_CONFIRMATION),
    ({"code": "10000", "refund_status": "REFUND_SUCCESS"}, wire.REFUND_QUERY, ResultClass.SUCCEEDED),
    ({"code": "10000"}, wire.REFUND_QUERY, ResultClass.NEEDS_CONFIRMATION),
    ({"code": "10000", "retry_flag": "Y"}, wire.CANCEL, ResultClass.RETRY_SAME_ID),
    ({"code": "20000", "sub_code": "isp.unknow-error"}, wire.QUERY, ResultClass.RETRY_SAME_ID),
    ({"code": "20000", "sub_code": "ACQ.SOMETHING_NEW"}, wire.REFUND, ResultClass.RETRY_SAME_ID),
    ({"code": "40004", "sub_code": "ACQ.SOMETHING_NEW"}, wire.REFUND, ResultClass.FAILED),
    ({"code": "40006", "sub_code": "isv.insufficient-isv-permissions"}, wire.REFUND, ResultClass.FAILED),
])
def test_classes(node, method, expected) -> None:
    assert classify(method, node).result is expected


def test_every_reference_sub_code_has_a_class_and_an_explanation() -> None:
    for sub_code, (cls, explanation) in SUB_CODES.items():
        verdict = classify(wire.REFUND, {"code": "40004", "sub_code": sub_code})
        assert verdict.result is cls and verdict.explanation == explanation and explanation.endswith(".")
    retry = {s for s, (c, _) in SUB_CODES.items() if c is ResultClass.RETRY_SAME_ID}
    assert "ACQ.SYSTEM_ERROR" in retry and "ACQ.SELLER_BALANCE_NOT_ENOUGH" not in retry


def test_policy_from_the_environment_names_the_bad_setting() -> None:
    from litellm_alipay.payments.policy import PaymentPolicy

    policy = PaymentPolicy.from_env({"ALIPAY_PAYMENTS_ENABLED_ACTIONS": "refund, alipay.trade.close",
                                     "ALIPAY_PAYMENTS_REFUND_CAP_PER_DAY": "500", "ALIPAY_PAYMENTS_CONFIRM": "true"})
    assert {"refund", "close_payment", "query_payment"} <= policy.enabled_actions and policy.confirm
    assert policy.refund_cap_per_day == 50000 and policy.refund_cap_per_call is None
    assert PaymentPolicy.from_env({}).enabled_actions == {"query_payment", "query_refund", "bill_download_url",
                                                          "mandate_status"}
    for env, setting in [({"ALIPAY_PAYMENTS_ENABLED_ACTIONS": "transfer"}, "payments.enabled_actions"),
                         ({"ALIPAY_PAYMENTS_REFUND_CAP_PER_CALL": "1.234"},
                          "payments.refund_cap_per_call (ALIPAY_PAYMENTS_REFUND_CAP_PER_CALL)")]:
        with pytest.raises(ConfigurationError) as bad:
            PaymentPolicy.from_env(env)
        assert bad.value.setting == setting
