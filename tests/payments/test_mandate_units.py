"""Delegation Pay's parts on their own: the sub_code classes, the operator's settings, the mandate table on
both ledger engines (SQLite and a real PostgreSQL), the notifications (forged, replayed, sign, unsign) and
two concurrent payments that together pass the mandate."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from litellm_alipay.errors import ConfigurationError, PolicyError
from litellm_alipay.ledger import Ledger, engine_for
from litellm_alipay.payments import PaymentPolicy, PaymentToolkit, ResultClass, wire
from litellm_alipay.payments.agent import delegation_wire as dw
from litellm_alipay.payments.agent.delegation import classify_delegation
from litellm_alipay.payments.agent.delegation_notify import DelegationNotifications
from litellm_alipay.payments.agent.mandate import Mandate, MandateBook, MandatePolicy, beijing_now, check_payable
from litellm_alipay.wire.signing import generate_private_key, load_private_key


@pytest.mark.parametrize(("method", "node", "expected"), [
    (dw.PAY, {"code": "10000", "trade_no": "T1"}, ResultClass.SUCCEEDED),
    (dw.PAY, {"code": "40004", "sub_code": "ACQ.TRADE_HAS_SUCCESS"}, ResultClass.NEEDS_CONFIRMATION),
    (dw.PAY, {"code": "20000", "sub_code": "ACQ.SYSTEM_ERROR"}, ResultClass.RETRY_SAME_ID),
    (dw.PAY, {"code": "40004", "sub_code": "ACQ.BEYOND_PAY_RESTRICTION"}, ResultClass.FAILED),
    (dw.PAY, {"code": "40004", "sub_code": "ACQ.PAYMENT_FAIL"}, ResultClass.RETRY_SAME_ID),
    (dw.PAY, {"code": "40004", "sub_code": "ACQ.SOMETHING_NEW"}, ResultClass.FAILED),
    (dw.PREPAY, {"code": "10000", "out_trade_no": "A"}, ResultClass.FAILED),  # no prepay_id: not agent_pay
    (dw.PREPAY, {"code": "10000", "prepay_id": "P"}, ResultClass.SUCCEEDED),
    (dw.PREPAY, {"code": "40004", "sub_code": "TRADE_HAS_SUCCESS"}, ResultClass.NEEDS_CONFIRMATION),
    (dw.PREPAY, {"code": "40004", "sub_code": "CONTEXT_INCONSISTENT"}, ResultClass.FAILED),
    (dw.QUERY, {"code": "40004", "sub_code": "DELEGATION_NOT_EXIST"}, ResultClass.FAILED),
    (dw.CANCEL, {"code": "20000", "sub_code": "SYSTEM_ERROR"}, ResultClass.RETRY_SAME_ID),
])
def test_every_documented_sub_code_has_a_class(method, node, expected) -> None:
    assert classify_delegation(method, node).result is expected


def test_the_operators_settings_are_checked_and_combined() -> None:
    env = {"ALIPAY_MANDATE_AMOUNT_MAX": "30", "ALIPAY_MANDATE_ALLOWED_GOODS": "a, b",
           "ALIPAY_MANDATE_MAX_PAYMENTS_PER_DAY": "3", "ALIPAY_PAYMENTS_ENABLED_ACTIONS": "pay_under_mandate"}
    policy = PaymentPolicy.from_env(env)
    assert policy.mandate.amount_max == 3000 and policy.mandate.allowed_goods == {"a", "b"}
    both = policy.mandate.strictest(MandatePolicy.from_mapping({"amount_max": "20", "allowed_goods": ["b", "c"],
                                                                "max_payments_per_day": 5}))
    assert (both.amount_max, both.allowed_goods, both.max_payments_per_day) == (2000, {"b"}, 3)
    assert MandatePolicy.from_mapping(both.constraints()) == MandatePolicy.from_mapping(
        {"amount_max": "20.00", "allowed_goods": ["b"], "max_payments_per_day": 3})
    with pytest.raises(ConfigurationError, match="ALIPAY_MANDATE_AMOUNT_MIN"):
        MandatePolicy.from_mapping({"amount_min": "5", "amount_max": "1"})
    with pytest.raises(ConfigurationError, match="payments.mandate.colour"):
        PaymentPolicy.from_mapping({"mandate": {"colour": "red"}})


def _mandate(mandate_id: str, **fields) -> Mandate:
    values = dict(app_id="2021000000000001", owner="owner", request_id="rid", external_agreement_no="EA1",
                  agreement_no=None, delegation_id=None, status=dw.SIGNING, max_total_cents=5000, times_limit=3,
                  remaining_cents=5000, remaining_times=3, validity_start="2026-01-01 00:00:00",
                  validity_end="2026-01-08 00:00:00", description="tickets", tag=None, constraints={}, synced=None)
    values.update(fields)
    return Mandate(mandate_id, **values)


def test_the_checks_name_what_refuses() -> None:
    inside = beijing_now(time.mktime((2026, 1, 3, 12, 0, 0, 0, 0, -1)))
    normal = _mandate("M1", status=dw.NORMAL)
    check_payable(normal, 5000, MandatePolicy(), now=inside)
    cases = [(_mandate("M1"), 100, "mandate.status"), (normal, 5001, "mandate.remaining_amount"),
             (_mandate("M1", status=dw.NORMAL, remaining_times=0), 1, "mandate.remaining_times")]
    for mandate, cents, setting in cases:
        with pytest.raises(PolicyError) as refused:
            check_payable(mandate, cents, MandatePolicy(), now=inside)
        assert refused.value.setting == setting
    with pytest.raises(PolicyError) as late:
        check_payable(normal, 1, MandatePolicy(), now=beijing_now(time.mktime((2026, 1, 8, 0, 0, 1, 0, 0, -1))))
    assert late.value.setting == "mandate.validity"


async def _book_round_trip(ledger: Ledger) -> None:
    book = MandateBook(ledger)
    mandate_id = "MD" + uuid.uuid4().hex[:20]
    created, new = await book.create(_mandate(mandate_id, external_agreement_no="EA" + mandate_id))
    again, second = await book.create(_mandate(mandate_id, max_total_cents=1))
    assert new and not second and again.max_total_cents == created.max_total_cents == 5000
    assert await book.get(mandate_id, "someone else") is None
    synced = await book.sync(mandate_id, {"status": "NORMAL", "agreement_no": "2088A", "delegation_id": "DL1",
                                          "remaining_amount": "40.00", "remaining_times": "2"})
    assert (synced.status, synced.remaining_cents, synced.remaining_times, synced.delegation_id) == \
        ("NORMAL", 4000, 2, "DL1") and synced.synced is not None
    assert (await book.by_delegation(synced.app_id, "DL1", None)).mandate_id == mandate_id
    assert [m.mandate_id for m in await book.by_agreement(synced.app_id, "2088A")] == [mandate_id]
    paid = await book.paid(mandate_id, 4000)
    assert (paid.remaining_cents, paid.remaining_times, paid.status) == (0, 1, dw.FINISHED)
    revived = await book.sync(mandate_id, {"status": "NORMAL", "remaining_amount": "40.00"})
    assert revived.status == dw.FINISHED  # a terminal state is never left
    await book.forget_sync(mandate_id)
    assert (await book.get(mandate_id)).synced is None


async def test_the_mandate_table_on_sqlite(tmp_path) -> None:
    await _book_round_trip(Ledger(engine_for(f"sqlite:///{tmp_path}/m.db")))


async def test_the_mandate_table_on_postgresql(postgres_url) -> None:
    ledger = Ledger(engine_for(postgres_url))
    try:
        await _book_round_trip(ledger)
    finally:
        ledger.engine.close()


async def test_notifications_are_verified_and_applied_once(alipay_emulator, tmp_path) -> None:
    from .conftest import emulator_settings

    kit = PaymentToolkit(emulator_settings(alipay_emulator),
                         PaymentPolicy.from_mapping({"enabled_actions": ["propose_mandate"]}))
    proposed = await kit.arun("propose_mandate", {"delegation_desc": "x", "max_total_amount": "9", "valid_days": 2},
                              idempotency_key="notify-units-1")
    mandate_id = proposed.extra["mandate_id"]
    agreement = (await MandateBook(kit.store.ledger).get(mandate_id)).external_agreement_no
    handler = DelegationNotifications.for_toolkit(kit)
    key = load_private_key((alipay_emulator.keys_dir / "alipay_private_key.pem").read_text())

    def signed(fields: dict, signer=key) -> dict:
        base = {"notify_id": uuid.uuid4().hex, "app_id": alipay_emulator.app_id, "charset": "utf-8",
                "notify_time": "2026-01-20 10:00:00", "version": "1.0", **fields}
        return wire.sign_notify(base, signer)

    sign = {"notify_type": dw.SIGN_NOTIFY, "agreement_no": "2088X", "external_agreement_no": agreement,
            "delegation_id": "DLX", "external_delegation_id": mandate_id, "status": "NORMAL"}
    assert await handler.ahandle(signed(sign, generate_private_key())) == "failure"  # forged
    assert await handler.ahandle({**signed(sign), "app_id": "2021999999999999"}) == "failure"
    note = signed(sign)
    assert await handler.ahandle(note) == "success"
    record = await MandateBook(kit.store.ledger).get(mandate_id)
    assert (record.status, record.agreement_no, record.delegation_id) == ("NORMAL", "2088X", "DLX")
    unsign = signed({"notify_type": dw.UNSIGN_NOTIFY, "agreement_no": "2088X", "external_agreement_no": agreement})
    assert await handler.ahandle(unsign) == "success"
    assert await handler.ahandle(note) == "success"  # a replayed sign notification is not applied again
    assert (await MandateBook(kit.store.ledger).get(mandate_id)).status == dw.TERMINATE
    assert await handler.ahandle(signed({"notify_type": "trade_status_sync", "out_trade_no": "A"})) == "failure"


async def test_two_concurrent_payments_cannot_both_pass_the_mandate(alipay_emulator) -> None:
    from .conftest import emulator_settings

    kit = PaymentToolkit(emulator_settings(alipay_emulator), PaymentPolicy.from_mapping(
        {"enabled_actions": ["propose_mandate", "pay_under_mandate"]}))
    proposed = await kit.arun("propose_mandate", {"delegation_desc": "x", "max_total_amount": "50", "valid_days": 2},
                              idempotency_key="race-mandate-1")
    alipay_emulator.approve_delegation(proposed.extra["order_str"])
    await kit.arun("mandate_status", {"mandate_id": proposed.extra["mandate_id"]})  # synced: NORMAL, 50 left

    async def buy(key: str):
        args = {"mandate_id": proposed.extra["mandate_id"], "total_amount": "30", "subject": "x"}
        return await kit.arun("pay_under_mandate", args, idempotency_key=key)

    outcomes = await asyncio.gather(buy("race-buy-0001"), buy("race-buy-0002"), return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, PolicyError)]
    assert len(refused) == 1 and refused[0].setting == "mandate.max_total_amount"
    assert [o.result for o in outcomes if not isinstance(o, Exception)] == [ResultClass.SUCCEEDED]
    assert alipay_emulator.stats()["delegations"]["payments_executed"] == 1
    assert json.loads(json.dumps(alipay_emulator.stats()["delegations"]))["paid_amount"] == "30.00"
