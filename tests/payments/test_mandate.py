"""Delegation Pay through the toolkit against the emulator: the mandate enforced on our side before anything
is sent (exhausted, expired, cancelled, terminated, the operator's constraints), at most one payment per
logical request however its answer is lost, and an unsign notification stopping the next payment. The
emulator's request counts tell what was sent."""

from __future__ import annotations

import json
import threading
import time

import pytest

from litellm_alipay.errors import PolicyError
from litellm_alipay.ledger import IdempotencyKeyReusedError, request_id
from litellm_alipay.payments import AuditLog, PaymentPolicy, PaymentToolkit, PaymentTools, ResultClass
from litellm_alipay.payments.agent import delegation_wire as dw
from litellm_alipay.payments.agent.delegation_notify import DelegationNotifications, delegation_notify_app
from litellm_alipay.payments.notify import NotifyVerifier

from .conftest import emulator_settings
from .test_notify import Receiver

MONEY = ["propose_mandate", "pay_under_mandate", "cancel_mandate"]


def _kit(settings, audit=None, **mandate) -> PaymentToolkit:
    return PaymentToolkit(settings, PaymentPolicy.from_mapping({"enabled_actions": MONEY, "mandate": mandate}), audit)


async def _approved(kit, emu, key: str = "trip-0120-mandate", **args) -> str:
    proposed = await kit.arun("propose_mandate", {"delegation_desc": "buy train tickets", "max_total_amount": "50",
                                                  "times_limit": 3, "valid_days": 7, **args}, idempotency_key=key)
    assert proposed.result is ResultClass.NEEDS_CONFIRMATION and not proposed.sent
    emu.approve_delegation(proposed.extra["order_str"])
    return proposed.extra["mandate_id"]


async def _pay(kit, mandate_id: str, amount: str, key: str, **more):
    return await kit.arun("pay_under_mandate", {"mandate_id": mandate_id, "total_amount": amount,
                                                "subject": "G102 second class", **more},
                          idempotency_key="purchase-" + key)


def _sent(emu) -> tuple[int, int, int]:
    """(prepays, pays, queries) the emulator received."""
    by = emu.stats()["requests_by_method"]
    return by.get(dw.PREPAY, 0), by.get(dw.PAY, 0), by.get(dw.QUERY, 0)


async def test_two_purchases_then_one_over_the_remainder_is_refused_before_sending(settings, alipay_emulator,
                                                                                   tmp_path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    kit = _kit(settings, audit)
    mandate_id = await _approved(kit, alipay_emulator)
    first = await _pay(kit, mandate_id, "20.00", "buy-1")
    second = await _pay(kit, mandate_id, "25.00", "buy-2")
    assert first.result is second.result is ResultClass.SUCCEEDED and first.trade_no != second.trade_no
    assert second.to_dict()["remaining_amount"] == "5.00" and second.to_dict()["remaining_times"] == "1"
    before = _sent(alipay_emulator)
    with pytest.raises(PolicyError) as refused:
        await _pay(kit, mandate_id, "10.00", "buy-3")
    assert refused.value.setting == "mandate.remaining_amount"
    assert _sent(alipay_emulator) == before  # refused by us: no prepay, no pay, not even a query
    again = await _pay(kit, mandate_id, "20.00", "buy-1")  # a retry of the first purchase
    assert again.replayed and again.trade_no == first.trade_no and _sent(alipay_emulator) == before
    with pytest.raises(IdempotencyKeyReusedError):
        await _pay(kit, mandate_id, "21.00", "buy-1")
    assert alipay_emulator.stats()["delegations"]["payments_executed"] == 2
    events = [(r["event"], r["action"]) for r in map(json.loads, (tmp_path / "audit.jsonl").read_text().splitlines())]
    assert ("proposal", "propose_mandate") in events and ("refused", "pay_under_mandate") in events
    assert events.count(("outcome", "pay_under_mandate")) == 2 and events.count(("replay", "pay_under_mandate")) == 1


async def test_a_used_up_count_is_refused_locally(settings, alipay_emulator) -> None:
    kit = _kit(settings)
    mandate_id = await _approved(kit, alipay_emulator, times_limit=1)
    assert (await _pay(kit, mandate_id, "1.00", "once")).to_dict()["mandate_status"] == "FINISHED"
    before = _sent(alipay_emulator)
    with pytest.raises(PolicyError, match="FINISHED") as refused:
        await _pay(kit, mandate_id, "1.00", "twice")
    assert refused.value.setting == "mandate.status" and _sent(alipay_emulator) == before


async def test_a_mandate_the_user_has_not_approved_pays_nothing(settings, alipay_emulator) -> None:
    kit = _kit(settings)
    proposed = await kit.arun("propose_mandate", {"delegation_desc": "x", "max_total_amount": "5", "valid_days": 1},
                              idempotency_key="not-approved-1")
    with pytest.raises(PolicyError, match="SIGNING"):
        await _pay(kit, proposed.extra["mandate_id"], "1.00", "too-early")
    assert _sent(alipay_emulator)[:2] == (0, 0)


async def test_an_expired_mandate_is_refused_locally(settings, alipay_emulator) -> None:
    kit = _kit(settings, refresh_seconds=3600)
    mandate_id = await _approved(kit, alipay_emulator)
    kit.mandates.clock = lambda: time.time() + 8 * 86400  # our clock past the window: the record says so
    with pytest.raises(PolicyError) as refused:
        await _pay(kit, mandate_id, "1.00", "late-1")
    assert refused.value.setting == "mandate.validity"
    alipay_emulator.advance_clock(days=8)  # Alipay's clock too: a refreshed record is EXPIRED
    kit = _kit(settings, refresh_seconds=0)
    with pytest.raises(PolicyError, match="EXPIRED"):
        await _pay(kit, mandate_id, "1.00", "late-2")
    prepays, pays, _ = _sent(alipay_emulator)
    assert (prepays, pays) == (0, 0)


async def test_a_cancelled_mandate_is_refused_locally(settings, alipay_emulator) -> None:
    kit = _kit(settings)
    mandate_id = await _approved(kit, alipay_emulator)
    cancelled = await kit.arun("cancel_mandate", {"mandate_id": mandate_id}, idempotency_key="cancel-trip")
    assert cancelled.result is ResultClass.SUCCEEDED and cancelled.to_dict()["status"] == "CANCELLED"
    assert alipay_emulator.stats()["delegations"]["cancels"] == 1
    before = _sent(alipay_emulator)
    with pytest.raises(PolicyError, match="CANCELLED"):
        await _pay(kit, mandate_id, "1.00", "after-cancel")
    assert _sent(alipay_emulator) == before


async def test_an_unsign_notification_stops_the_next_payment(settings, alipay_emulator, tmp_path) -> None:
    kit = _kit(settings, AuditLog(tmp_path / "audit.jsonl"), refresh_seconds=3600)
    unsigned = threading.Event()

    class Watching(DelegationNotifications):
        async def ahandle(self, params):
            answer = await super().ahandle(params)
            if params.get("notify_type") == dw.UNSIGN_NOTIFY and answer == "success":
                unsigned.set()
            return answer

    receiver = Receiver(delegation_notify_app(Watching.for_toolkit(kit)))
    try:
        alipay_emulator.set_delegation_gateway(receiver.url)
        mandate_id = await _approved(kit, alipay_emulator)
        paid = await _pay(kit, mandate_id, "5.00", "before-unsign")
        assert paid.result is ResultClass.SUCCEEDED
        alipay_emulator.terminate_agreement(paid.to_dict()["agreement_no"] if "agreement_no" in paid.to_dict()
                                            else (await kit.arun("mandate_status", {"mandate_id": mandate_id}))
                                            .to_dict()["agreement_no"])
        assert unsigned.wait(20), "the unsign notification did not arrive"
        before = _sent(alipay_emulator)
        with pytest.raises(PolicyError, match="TERMINATE"):
            await _pay(kit, mandate_id, "5.00", "after-unsign")
        assert _sent(alipay_emulator) == before  # the record was fresh: only the notification stopped it
    finally:
        receiver.stop()
    notes = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert any(n["event"] == "notify" and n["action"] == dw.UNSIGN_NOTIFY and n["result"] == "applied"
               for n in notes)


async def test_the_payment_result_notification_is_verified_and_applied_once(settings, alipay_emulator,
                                                                             tmp_path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    results: list[str] = []
    arrived = threading.Event()

    class Watching(DelegationNotifications):
        async def ahandle(self, params):
            answer = await super().ahandle(params)
            if params.get("notify_type") == "trade_status_sync":
                results.append(answer)
                arrived.set()
            return answer

    receiver = Receiver(delegation_notify_app(Watching.for_toolkit(
        _kit(settings), trades=NotifyVerifier.for_toolkit(_kit(settings, audit)))))
    try:
        kit = _kit(settings, audit, notify_url=receiver.url)
        mandate_id = await _approved(kit, alipay_emulator)
        paid = await _pay(kit, mandate_id, "7.00", "notified-1")
        assert arrived.wait(20), "the payment-result notification did not arrive"
    finally:
        receiver.stop()
    assert results == ["success"]
    notes = [r for r in map(json.loads, (tmp_path / "audit.jsonl").read_text().splitlines()) if r["event"] == "notify"]
    assert [(n["result"], n["trade_no"], n["trade_status"], n["amount"]) for n in notes] == \
        [("applied", paid.trade_no, "TRADE_SUCCESS", "7.00")]


@pytest.mark.parametrize("fault", [{"kind": "drop_after_actions"}, {"kind": "acq_system_error_after"},
                                   {"kind": "bad_signature"}])
async def test_a_lost_pay_answer_is_reconciled_without_a_second_payment(fault, alipay_emulator) -> None:
    kit = _kit(emulator_settings(alipay_emulator, read_timeout=2))
    mandate_id = await _approved(kit, alipay_emulator)
    alipay_emulator.set_faults([{**fault, "methods": [dw.PAY], "next": 1}])
    result = await _pay(kit, mandate_id, "12.00", "lost-answer")
    assert result.result is ResultClass.SUCCEEDED and result.reconciled and result.trade_no
    assert alipay_emulator.stats()["delegations"]["payments_executed"] == 1
    _, pays, _ = _sent(alipay_emulator)
    again = await _pay(kit, mandate_id, "12.00", "lost-answer")
    assert again.replayed and again.trade_no == result.trade_no and _sent(alipay_emulator)[1] == pays == 1
    status = await kit.arun("mandate_status", {"mandate_id": mandate_id})
    assert status.to_dict()["remaining_amount"] == "38.00"


async def test_a_payment_answered_system_error_before_executing_is_sent_again_once(settings, alipay_emulator) -> None:
    kit = _kit(settings)
    mandate_id = await _approved(kit, alipay_emulator)
    alipay_emulator.set_faults([{"kind": "acq_system_error", "methods": [dw.PAY], "next": 1}])
    result = await _pay(kit, mandate_id, "3.00", "busy-once")
    assert result.result is ResultClass.SUCCEEDED and _sent(alipay_emulator)[1] == 2
    assert alipay_emulator.stats()["delegations"]["payments_executed"] == 1


async def test_the_operators_constraints_are_enforced_before_sending(settings, alipay_emulator) -> None:
    kit = _kit(settings, amount_max="10.00", max_payments_per_day=2)
    mandate_id = (await kit.mandates.propose(scope="-|-", idempotency_key="constrained-1", description="snacks",
                                             max_total_amount="50.00", valid_days=3,
                                             constraints={"allowed_goods": ["sku-1", "sku-2"], "amount_max": "8"}))
    alipay_emulator.approve_delegation(mandate_id.extra["order_str"])
    mandate_id = mandate_id.extra["mandate_id"]
    with pytest.raises(PolicyError) as too_much:
        await _pay(kit, mandate_id, "9.00", "c-1", goods_id="sku-1")  # per mandate: at most 8
    assert too_much.value.setting.startswith("payments.mandate.amount_max")
    with pytest.raises(PolicyError) as other_goods:
        await _pay(kit, mandate_id, "2.00", "c-2", goods_id="sku-9")
    assert other_goods.value.setting.startswith("payments.mandate.allowed_goods")
    assert (await _pay(kit, mandate_id, "2.00", "c-3", goods_id="sku-1")).result is ResultClass.SUCCEEDED
    assert (await _pay(kit, mandate_id, "2.00", "c-4", goods_id="sku-2")).result is ResultClass.SUCCEEDED
    with pytest.raises(PolicyError) as third_today:
        await _pay(kit, mandate_id, "2.00", "c-5", goods_id="sku-2")
    assert third_today.value.setting.startswith("payments.mandate.max_payments_per_day")
    assert _sent(alipay_emulator)[:2] == (2, 2)


async def test_a_mandate_belongs_to_its_caller_and_its_key(settings, alipay_emulator) -> None:
    kit = _kit(settings)
    mandate_id = await _approved(kit, alipay_emulator)
    with pytest.raises(PolicyError) as stranger:
        await kit.arun("pay_under_mandate", {"mandate_id": mandate_id, "total_amount": "1", "subject": "x"},
                       idempotency_key="someone-else", scope="other-key|tenant-b")
    assert stranger.value.setting == "mandate_id"
    with pytest.raises(IdempotencyKeyReusedError):
        await kit.arun("propose_mandate", {"delegation_desc": "buy train tickets", "max_total_amount": "500",
                                           "valid_days": 7}, idempotency_key="trip-0120-mandate")
    same = {"delegation_desc": "buy train tickets", "max_total_amount": "50", "times_limit": 3, "valid_days": 7}
    retried = await kit.arun("propose_mandate", same, idempotency_key="trip-0120-mandate")
    assert retried.extra["mandate_id"] == mandate_id and retried.extra["order_str"]


async def test_the_tools_offer_status_by_default_and_refuse_in_structured_content(settings, alipay_emulator) -> None:
    default = PaymentTools(PaymentToolkit(settings))
    names = [d["function"]["name"] for d in default.definitions()]
    assert "mandate_status" in names and "pay_under_mandate" not in names and "propose_mandate" not in names
    tools = PaymentTools(_kit(settings))
    call = {"id": "c1", "function": {"name": "propose_mandate", "arguments": json.dumps({
        "delegation_desc": "tickets", "max_total_amount": "50", "times_limit": 3, "valid_days": 7,
        "external_agreement_no": "MODEL1"})}}  # a model-invented id is dropped
    proposed = await tools.aexecute(call, idempotency_key="tool-propose-1")
    assert proposed.content["order_str"] and proposed.content["mandate_id"] != "MODEL1"
    alipay_emulator.approve_delegation(proposed.content["order_str"])
    over = {"id": "c2", "function": {"name": "pay_under_mandate", "arguments": json.dumps({
        "mandate_id": proposed.content["mandate_id"], "total_amount": "60", "subject": "tickets"})}}
    refused = await tools.aexecute(over, idempotency_key="tool-pay-1")
    assert refused.content["result"] == "refused" and refused.content["setting"] == "mandate.remaining_amount"


async def test_a_requests_recorded_payments_are_answered_from_the_ledger(settings, alipay_emulator) -> None:
    kit = _kit(settings)
    mandate_id = await _approved(kit, alipay_emulator)
    paid = await _pay(kit, mandate_id, "4.00", "recorded-1")
    [(args, result)] = await kit.arecorded("purchase-recorded-1", "-|-")
    assert args["action"] == "pay_under_mandate" and args["total_amount"] == "4.00"
    assert result.replayed and result.trade_no == paid.trade_no
    rid = request_id("-|-", "purchase-never-sent")
    await kit.store.ledger.claim_action(rid, settings.app_id, "pay_under_mandate", mandate_id, "AP" + "0" * 30, 300)
    [(_, unfinished)] = await kit.arecorded("purchase-never-sent", "-|-")  # claimed, then the process died
    assert unfinished.result is ResultClass.RETRY_SAME_ID and unfinished.outcome_known and not unfinished.sent
    assert _sent(alipay_emulator)[1] == 1


async def test_the_delegation_receiver_bounds_the_request_body() -> None:
    """The Delegation Pay receiver is the trade notifications' one receiver: a body past its bound is a 413,
    never read whole (and never handed to the handler)."""
    from litellm_alipay.payments.notify import NotifySettings

    seen: list[dict] = []

    class Handler:
        async def ahandle(self, params: dict) -> str:
            seen.append(params)
            return "success"

    app = delegation_notify_app(Handler())  # type: ignore[arg-type]
    sent: list[dict] = []
    size = NotifySettings().max_body_bytes + 1
    pieces = iter([{"type": "http.request", "body": b"a" * size, "more_body": True},
                   {"type": "http.request", "body": b"", "more_body": False}])

    async def receive() -> dict:
        return next(pieces)

    async def send(message: dict) -> None:
        sent.append(message)

    await app({"type": "http", "method": "POST", "headers": []}, receive, send)
    assert sent[0]["status"] == 413 and seen == []
