"""The A2M merchant against the real emulator: orders before the 402, verify, every check, one service
per proof (also under concurrent replays and across ledgers on one PostgreSQL), confirm and its retry."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from litellm_alipay.errors import PaymentRequiredError
from litellm_alipay.ledger import Ledger, engine_for
from litellm_alipay.payments.agent import headers
from litellm_alipay.payments.agent.a2m import CONFIRM, CONFIRMED, SERVED, VERIFY, A2MMerchant

from .conftest import a2m_settings, pay, proof_for

R = "/model/fin-chat"


async def _bill(merchant: A2MMerchant, resource: str = R) -> str:
    with pytest.raises(PaymentRequiredError) as refused:
        await merchant.admit(None, resource)
    assert refused.value.code == "PAYMENT_REQUIRED"
    assert refused.value.payment_needed
    return refused.value.payment_needed


async def _refusal(merchant: A2MMerchant, proof: str | None, resource: str = R) -> PaymentRequiredError:
    with pytest.raises(PaymentRequiredError) as refused:
        await merchant.admit(proof, resource)
    return refused.value


def _audit(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]


async def test_the_order_is_persisted_before_the_bill_leaves(merchant):
    needed = await _bill(merchant)
    bill = headers.decode(needed, headers.PAYMENT_NEEDED)
    order = await merchant.order(bill["protocol"]["out_trade_no"])
    assert order is not None and order.state == "open" and order.amount_cents == 1 and order.resource_id == R
    assert bill["method"]["seller_app_id"] == merchant.settings.app_id
    assert bill["method"]["service_id"] == "api_mock_service_id"


async def test_a_paid_proof_serves_once_and_is_confirmed(merchant, alipay_emulator, tmp_path):
    proof = proof_for(alipay_emulator, await _bill(merchant))
    admission = await merchant.admit(proof, R)
    validation = headers.decode(admission.validation, headers.PAYMENT_VALIDATION)
    assert validation == {"trade_no": admission.trade_no, "out_trade_no": admission.out_trade_no,
                          "validated": True, "resource_id": R}
    in_use = await _refusal(merchant, proof)  # while it is being served
    assert (in_use.code, in_use.payment_needed) == ("PAYMENT_PROOF_IN_USE", None)
    assert await merchant.fulfil(admission) is True
    assert (await merchant.order(admission.out_trade_no)).state == CONFIRMED
    replay = await _refusal(merchant, proof)
    assert replay.code == "ALREADY_FULFILLED" and replay.payment_needed  # a new request needs a new payment
    assert replay.body()["already_fulfilled"] is True
    trades = alipay_emulator.stats()["a2m_trades"]
    assert [(t["trade_no"], t["confirmed"], t["verified"]) for t in trades] == [(admission.trade_no, 1, 1)]
    lines = _audit(tmp_path)
    assert [line["event"] for line in lines if line["event"] in ("a2m_admitted", "a2m_served", "a2m_confirmed")] == [
        "a2m_admitted", "a2m_served", "a2m_confirmed"]
    secret = headers.parse_proof(proof).payment_proof
    assert secret not in (tmp_path / "audit.jsonl").read_text()


async def test_concurrent_replays_of_one_proof_admit_exactly_one(merchant, alipay_emulator):
    proof = proof_for(alipay_emulator, await _bill(merchant))
    outcomes = await asyncio.gather(*(merchant.admit(proof, R) for _ in range(8)), return_exceptions=True)
    admitted = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(admitted) == 1
    assert all(isinstance(o, PaymentRequiredError) for o in outcomes if o not in admitted)


async def test_two_instances_on_one_postgresql_serve_a_proof_once(settings, alipay_emulator, postgres_url, tmp_path):
    instances = [A2MMerchant(settings, a2m_settings(tmp_path), ledger=Ledger(engine_for(postgres_url)))
                 for _ in range(2)]
    proof = proof_for(alipay_emulator, await _bill(instances[0]))
    outcomes = await asyncio.gather(*(instances[i % 2].admit(proof, R) for i in range(6)), return_exceptions=True)
    admitted = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(admitted) == 1
    assert await instances[1].fulfil(admitted[0]) is True  # either instance may finish it
    assert (await _refusal(instances[0], proof)).code == "ALREADY_FULFILLED"
    for merchant in instances:
        merchant.ledger.engine.close()


async def test_a_failed_service_confirms_nothing_and_the_same_proof_is_served_once(merchant, alipay_emulator):
    proof = proof_for(alipay_emulator, await _bill(merchant))
    first = await merchant.admit(proof, R)
    await merchant.abandon(first)
    assert alipay_emulator.stats()["a2m_trades"][0]["confirmed"] == 0
    second = await merchant.admit(proof, R)
    assert second.trade_no == first.trade_no
    assert await merchant.fulfil(second) is True
    assert (await _refusal(merchant, proof)).code == "ALREADY_FULFILLED"
    assert alipay_emulator.stats()["a2m_trades"][0]["confirmed"] == 1


async def test_a_failed_confirm_is_retried_by_the_next_request_with_the_proof(merchant, alipay_emulator):
    proof = proof_for(alipay_emulator, await _bill(merchant))
    admission = await merchant.admit(proof, R)
    alipay_emulator.set_faults([{"kind": "system_error", "methods": [CONFIRM], "next": 2}])
    assert await merchant.fulfil(admission) is False  # served, Alipay has no fulfilment yet
    assert (await merchant.order(admission.out_trade_no)).state == SERVED
    again = await _refusal(merchant, proof)  # not served again: confirmed now
    assert again.code == "ALREADY_FULFILLED" and again.body()["fulfillment_confirmed"] is True
    assert (await merchant.order(admission.out_trade_no)).state == CONFIRMED
    assert alipay_emulator.stats()["a2m_trades"][0]["confirmed"] == 1


async def test_a_claim_a_crashed_worker_left_is_taken_again_after_its_lease(settings, alipay_emulator, tmp_path):
    merchant = A2MMerchant(settings, a2m_settings(tmp_path, serve_lease_seconds=1))
    proof = proof_for(alipay_emulator, await _bill(merchant))
    crashed = await merchant.admit(proof, R)  # never fulfilled nor abandoned
    assert (await _refusal(merchant, proof)).code == "PAYMENT_PROOF_IN_USE"
    await merchant.ledger.transact(lambda tx: tx.run(
        "UPDATE alipay_a2m_orders SET claimed = ? WHERE out_trade_no = ?", (time.time() - 5, crashed.out_trade_no)))
    taken = await merchant.admit(proof, R)
    assert taken.claim != crashed.claim
    await merchant.fulfil(crashed)  # the old claim can no longer finish it
    assert (await merchant.order(crashed.out_trade_no)).state == "serving"
    assert await merchant.fulfil(taken) is True


@pytest.mark.parametrize(("kind", "code"), [("a2m_inactive", "INVALID_PAYMENT_PROOF"),
                                            ("a2m_other_resource", "RESOURCE_ID_MISMATCH"),
                                            ("a2m_other_amount", "AMOUNT_MISMATCH")])
async def test_a_verify_that_fails_a_check_is_a_402_with_a_fresh_bill(merchant, alipay_emulator, tmp_path, kind,
                                                                       code):
    proof = proof_for(alipay_emulator, await _bill(merchant))
    alipay_emulator.set_faults([{"kind": kind, "methods": [VERIFY], "next": 1}])
    refused = await _refusal(merchant, proof)
    assert refused.code == code and refused.payment_needed
    assert any(line["event"] == "a2m_refused" and line["result"] == code for line in _audit(tmp_path))
    assert alipay_emulator.stats()["a2m_trades"][0]["confirmed"] == 0


async def test_a_proof_for_another_resource_or_a_forged_one_is_refused(merchant, alipay_emulator):
    proof = proof_for(alipay_emulator, await _bill(merchant, "/model/cheap"))
    assert (await _refusal(merchant, proof, R)).code == "RESOURCE_ID_MISMATCH"
    parsed = headers.parse_proof(proof)
    forged = headers.Proof(parsed.trade_no, "00" * 32, parsed.client_session).header()
    assert (await _refusal(merchant, forged)).code == "INVALID_PAYMENT_PROOF"
    unknown = headers.Proof("2" * 32, "ab" * 32).header()
    assert (await _refusal(merchant, unknown)).code == "INVALID_PAYMENT_PROOF"
    garbage = await _refusal(merchant, "%%%")
    assert garbage.code == "INVALID_PAYMENT_PROOF_FORMAT" and garbage.payment_needed


async def test_an_expired_order_is_refused(settings, alipay_emulator, tmp_path):
    merchant = A2MMerchant(settings, a2m_settings(tmp_path, proof_grace_seconds=0))
    needed = await _bill(merchant)
    proof = proof_for(alipay_emulator, needed)
    out_trade_no = headers.decode(needed, headers.PAYMENT_NEEDED)["protocol"]["out_trade_no"]
    await merchant.ledger.transact(lambda tx: tx.run(
        "UPDATE alipay_a2m_orders SET pay_before = ? WHERE out_trade_no = ?", (time.time() - 1, out_trade_no)))
    refused = await _refusal(merchant, proof)
    assert refused.code == "ORDER_EXPIRED" and refused.payment_needed


async def test_a_verify_timeout_asks_for_the_same_proof_again_not_a_new_payment(settings, alipay_emulator, tmp_path):
    merchant = A2MMerchant(settings, a2m_settings(tmp_path, verify_timeout=0.5))
    proof = proof_for(alipay_emulator, await _bill(merchant))
    alipay_emulator.set_faults([{"kind": "stall", "methods": [VERIFY], "seconds": 5, "next": 1}])
    refused = await _refusal(merchant, proof)
    assert (refused.code, refused.payment_needed) == ("VERIFY_UNAVAILABLE", None)
    assert refused.body()["retry_with_same_proof"] is True
    admission = await merchant.admit(proof, R)  # the same proof, once verify answers
    assert await merchant.fulfil(admission) is True


async def test_the_stand_in_refuses_a_bill_whose_seller_signature_does_not_verify(merchant, alipay_emulator):
    bill = headers.decode(await _bill(merchant), headers.PAYMENT_NEEDED)
    bill["protocol"]["amount"] = "0.00"  # tampered after signing
    answer = pay(alipay_emulator, headers.encode(bill))
    assert answer.status_code == 400 and answer.json()["code"] == "10001"
    needed = await _bill(merchant)
    assert pay(alipay_emulator, needed).status_code == 200
    assert pay(alipay_emulator, needed).json()["code"] == "ORDER_ALREADY_PAID"  # a bill is paid once


async def test_a_crash_after_serving_and_before_confirm_is_confirmed_on_the_next_attempt(merchant, alipay_emulator):
    proof = proof_for(alipay_emulator, await _bill(merchant))
    admission = await merchant.admit(proof, R)
    # the worker wrote `served` (the answer went out) and died before confirm was sent
    await merchant.ledger.transact(lambda tx: tx.run(
        "UPDATE alipay_a2m_orders SET state = ?, claimed = ? WHERE out_trade_no = ?",
        (SERVED, time.time() - 3600, admission.out_trade_no)))
    again = await _refusal(merchant, proof)
    assert again.code == "ALREADY_FULFILLED" and again.body()["fulfillment_confirmed"] is True
    assert (await merchant.order(admission.out_trade_no)).state == CONFIRMED
    assert alipay_emulator.stats()["a2m_trades"][0]["confirmed"] == 1


async def test_unpaid_orders_past_their_deadline_are_swept(merchant):
    merchant.SWEEP_EVERY = 2
    old = headers.decode(await _bill(merchant), headers.PAYMENT_NEEDED)["protocol"]["out_trade_no"]
    await merchant.ledger.transact(lambda tx: tx.run(
        "UPDATE alipay_a2m_orders SET pay_before = ? WHERE out_trade_no = ?", (time.time() - 3600, old)))
    fresh = headers.decode(await _bill(merchant), headers.PAYMENT_NEEDED)["protocol"]["out_trade_no"]
    assert await merchant.order(old) is None and await merchant.order(fresh) is not None
