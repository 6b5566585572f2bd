"""The toolkit against the emulator: every result class, the policy, confirmation, and a refund that
executes exactly once however the answer is lost (the emulator's stats tell)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from litellm_alipay.errors import ConfigurationError
from litellm_alipay.ledger import request_id
from litellm_alipay.payments import AuditLog, PaymentPolicy, PaymentToolkit, PolicyError, Proposal, ResultClass
from litellm_alipay.payments.idempotency import refund_request_no
from litellm_alipay.payments.methods import PaymentMethods
from litellm_alipay.payments.policy import beijing_day

from .conftest import emulator_settings

KEY = "order-4711-refund-1"


def _toolkit(settings, audit=None, **policy) -> PaymentToolkit:
    policy.setdefault("enabled_actions", ["refund", "close_payment", "cancel_payment", "create_payment"])
    return PaymentToolkit(settings, PaymentPolicy.from_mapping(policy), audit)


def _refunds(emu) -> tuple[int, int]:
    stats = emu.stats()
    return stats["trades"]["refunds_executed"], stats["requests_by_method"].get("alipay.trade.refund", 0)


async def test_a_refund_succeeds_with_a_derived_request_number(settings, trade, alipay_emulator) -> None:
    t = trade("100.00")
    result = await _toolkit(settings).arun("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": 25},
                                           idempotency_key=KEY)
    assert result.result is ResultClass.SUCCEEDED and result.node["fund_change"] == "Y"
    assert result.out_request_no == refund_request_no(settings.app_id, request_id("-|-", KEY),
                                                      f"out_trade_no={t['out_trade_no']}")
    assert result.to_dict()["refund_fee"] == "25.00"
    assert _refunds(alipay_emulator) == (1, 1)


async def test_the_same_logical_refund_twice_refunds_once(settings, trade, alipay_emulator) -> None:
    t, kit = trade("100.00"), _toolkit(settings)
    args = {"out_trade_no": t["out_trade_no"], "refund_amount": "10.00"}
    first = await kit.arun("refund", args, idempotency_key=KEY)
    again = await kit.arun("refund", args, idempotency_key=KEY)
    assert first.result is again.result is ResultClass.SUCCEEDED
    assert again.replayed and not first.replayed and again.out_request_no == first.out_request_no
    assert again.to_dict()["replayed"] is True
    assert _refunds(alipay_emulator) == (1, 1)  # the repeat was answered from the ledger, nothing re-sent
    refund_queries = alipay_emulator.stats()["requests_by_method"].get("alipay.trade.fastpay.refund.query", 0)
    await kit.arun("refund", args, idempotency_key=KEY)
    assert alipay_emulator.stats()["requests_by_method"].get("alipay.trade.fastpay.refund.query", 0) == refund_queries
    other = await kit.arun("refund", args, idempotency_key=KEY + "-second")
    assert other.result is ResultClass.SUCCEEDED and other.out_request_no != first.out_request_no
    assert _refunds(alipay_emulator) == (2, 2)


@pytest.mark.parametrize("fault", [
    {"kind": "drop_after_actions"},  # executed, then the connection reset: the answer is lost
    {"kind": "acq_system_error_after"},  # executed, then ACQ.SYSTEM_ERROR answered
    {"kind": "stall_after_actions", "seconds": 30},  # executed, then held past the client's timeout
    {"kind": "bad_signature"},  # executed, answered with a signature that does not verify
])
async def test_committed_but_answer_lost_is_reconciled_not_refunded_again(fault, trade, alipay_emulator) -> None:
    settings = emulator_settings(alipay_emulator, read_timeout=1)
    t = trade("100.00")
    alipay_emulator.set_faults([{**fault, "methods": ["alipay.trade.refund"], "next": 1}])
    result = await _toolkit(settings).arun("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "30.00"},
                                           idempotency_key=KEY)
    assert result.result is ResultClass.SUCCEEDED and result.reconciled
    assert result.node["refund_status"] == "REFUND_SUCCESS" and result.node["refund_amount"] == "30.00"
    assert _refunds(alipay_emulator) == (1, 1)


@pytest.mark.parametrize("fault", [{"kind": "acq_system_error"}, {"kind": "drop"}, {"kind": "http_5xx"}])
async def test_not_executed_is_resent_with_the_same_number_once(fault, settings, trade, alipay_emulator) -> None:
    t = trade("100.00")
    alipay_emulator.set_faults([{**fault, "methods": ["alipay.trade.refund"], "next": 1}])
    result = await _toolkit(settings).arun("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "30.00"},
                                           idempotency_key=KEY)
    assert result.result is ResultClass.SUCCEEDED and not result.reconciled
    assert _refunds(alipay_emulator) == (1, 2)  # two sends, one refund


async def test_every_retry_under_faults_still_refunds_once(trade, alipay_emulator) -> None:
    """A caller retrying the same logical refund through a run of faults: exactly one refund."""
    settings = emulator_settings(alipay_emulator, read_timeout=1)
    t, kit = trade("100.00"), _toolkit(settings)
    alipay_emulator.set_faults([
        {"kind": "drop", "methods": ["alipay.trade.refund"], "next": 1},
        {"kind": "stall_after_actions", "seconds": 30, "methods": ["alipay.trade.refund"], "next": 1},
        {"kind": "acq_system_error", "methods": ["alipay.trade.fastpay.refund.query"], "next": 2},
    ])
    outcomes = []
    for _ in range(4):  # bounded: the caller's retry loop
        result = await kit.arun("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "40.00"},
                                idempotency_key=KEY)
        outcomes.append(result.result)
        if result.result is ResultClass.SUCCEEDED:
            break
    assert outcomes[-1] is ResultClass.SUCCEEDED and ResultClass.RETRY_SAME_ID in outcomes
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 1


async def test_result_classes_of_the_raw_methods(settings, trade) -> None:
    t, finished = trade("50.00"), trade("5.00", trade_status="TRADE_FINISHED")
    m = PaymentMethods(settings)
    ok = await m.refund(out_request_no="n1", refund_amount="5", out_trade_no=t["out_trade_no"])
    repeat = await m.refund(out_request_no="n1", refund_amount="5.00", out_trade_no=t["out_trade_no"])
    final = await m.refund(out_request_no="n2", refund_amount="1", out_trade_no=finished["out_trade_no"])
    missing = await m.refund_query(out_request_no="never", out_trade_no=t["out_trade_no"])
    assert ok.result is ResultClass.SUCCEEDED
    assert repeat.result is ResultClass.NEEDS_CONFIRMATION and repeat.node["fund_change"] == "N"
    assert (final.result, final.sub_code) == (ResultClass.FAILED, "ACQ.TRADE_HAS_FINISHED")
    assert final.to_dict()["sub_msg"] and "finished" in final.explanation
    assert missing.result is ResultClass.NEEDS_CONFIRMATION and "refund_status" not in missing.node


async def test_retry_class_when_alipay_stays_busy(settings, trade, alipay_emulator) -> None:
    t = trade("50.00")
    alipay_emulator.set_faults([{"kind": "acq_system_error", "methods": ["alipay.trade.refund"]}])
    result = await _toolkit(settings).arun("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "5"},
                                           idempotency_key=KEY)
    assert (result.result, result.sub_code, result.outcome_known) == (ResultClass.RETRY_SAME_ID,
                                                                      "ACQ.SYSTEM_ERROR", True)
    assert "same idempotency key" in result.explanation
    assert _refunds(alipay_emulator) == (0, 2)


async def test_failed_for_good_is_not_resent(settings, trade, alipay_emulator) -> None:
    t = trade("50.00", refund_error="ACQ.SELLER_BALANCE_NOT_ENOUGH")
    result = await _toolkit(settings).arun("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "5"},
                                           idempotency_key=KEY)
    assert (result.result, result.sub_code) == (ResultClass.FAILED, "ACQ.SELLER_BALANCE_NOT_ENOUGH")
    assert _refunds(alipay_emulator) == (0, 1)


async def test_read_only_by_default(settings, trade, alipay_emulator) -> None:
    kit = PaymentToolkit(settings)
    t = trade("50.00")
    assert (await kit.arun("query_payment", {"out_trade_no": t["out_trade_no"]})).node["trade_status"] == \
        "TRADE_SUCCESS"
    with pytest.raises(PolicyError) as refused:
        await kit.arun("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "5"}, idempotency_key=KEY)
    assert refused.value.setting == "payments.enabled_actions (ALIPAY_PAYMENTS_ENABLED_ACTIONS)"
    assert _refunds(alipay_emulator) == (0, 0)


async def test_caps_and_the_refundable_balance_refuse_before_sending(settings, trade, alipay_emulator) -> None:
    t = trade("100.00")
    kit = _toolkit(settings, refund_cap_per_call="60", refund_cap_per_day="80")
    with pytest.raises(PolicyError) as per_call:
        await kit.arun("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "60.01"}, idempotency_key=KEY)
    assert per_call.value.setting == "payments.refund_cap_per_call (ALIPAY_PAYMENTS_REFUND_CAP_PER_CALL)"
    await kit.arun("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "50"}, idempotency_key="k-one-111")
    with pytest.raises(PolicyError) as balance:
        await kit.arun("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "50.01"},
                       idempotency_key="k-two-222")
    assert balance.value.setting == "refund_amount" and "balance of 50.00" in str(balance.value)
    other = trade("100.00")
    with pytest.raises(PolicyError) as daily:
        await kit.arun("refund", {"out_trade_no": other["out_trade_no"], "refund_amount": "30.01"},
                       idempotency_key="k-three-333")
    assert daily.value.setting == "payments.refund_cap_per_day (ALIPAY_PAYMENTS_REFUND_CAP_PER_DAY)"
    assert _refunds(alipay_emulator) == (1, 1)


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_the_daily_cap_is_shared_through_the_ledger(engine, postgres_url, tmp_path, alipay_emulator,
                                                          trade) -> None:
    from litellm_alipay.ledger import engine_for
    from litellm_alipay.ledger.book import Ledger

    url = postgres_url if engine == "postgresql" else f"sqlite:///{tmp_path}/shared.db"
    settings = emulator_settings(alipay_emulator)
    cap = {"refund_cap_per_day": "50", "enabled_actions": ["refund"]}
    # two workers, each with its own connection to one database
    one = PaymentToolkit(settings, PaymentPolicy.from_mapping(cap), ledger=Ledger(engine_for(url)))
    two = PaymentToolkit(settings, PaymentPolicy.from_mapping(cap), ledger=Ledger(engine_for(url)))
    day = f"payments:app-day:{settings.app_id}:{beijing_day()}"
    await one.store.ledger.add(day, -await one.store.ledger.total(day))  # a rerun on the same database starts at 0
    a, b = trade("100.00"), trade("100.00")
    await one.arun("refund", {"out_trade_no": a["out_trade_no"], "refund_amount": "30"},
                   idempotency_key=uuid.uuid4().hex)
    with pytest.raises(PolicyError):
        await two.arun("refund", {"out_trade_no": b["out_trade_no"], "refund_amount": "30"},
                       idempotency_key=uuid.uuid4().hex)
    ok = await two.arun("refund", {"out_trade_no": b["out_trade_no"], "refund_amount": "20"},
                        idempotency_key=uuid.uuid4().hex)
    assert ok.result is ResultClass.SUCCEEDED
    assert _refunds(alipay_emulator) == (2, 2)


async def test_two_phase_confirmation(settings, trade, alipay_emulator) -> None:
    t = trade("100.00")
    kit = _toolkit(settings, confirm=True)
    proposal = await kit.arun("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "12.34",
                                         "refund_reason": "damaged"}, idempotency_key=KEY)
    assert isinstance(proposal, Proposal)
    told = proposal.to_dict()
    assert told["result"] == "needs_confirmation" and told["amount"] == "12.34" and told["refund_reason"] == "damaged"
    assert proposal.token not in json.dumps(told) and proposal.token not in repr(proposal)
    assert _refunds(alipay_emulator) == (0, 0)
    with pytest.raises(PolicyError):
        await kit.aconfirm("cf_forged")
    done = await kit.aconfirm(proposal.token)
    assert done.result is ResultClass.SUCCEEDED and done.out_request_no == proposal.out_request_no
    with pytest.raises(PolicyError):
        await kit.aconfirm(proposal.token)  # used
    assert _refunds(alipay_emulator) == (1, 1)


async def test_a_proposal_is_confirmed_once_by_any_worker(postgres_url, alipay_emulator, trade) -> None:
    from litellm_alipay.ledger import engine_for
    from litellm_alipay.ledger.book import Ledger

    settings = emulator_settings(alipay_emulator)
    policy = PaymentPolicy.from_mapping({"confirm": True, "enabled_actions": ["refund"]})
    proposer, confirmer, third = (PaymentToolkit(settings, policy, ledger=Ledger(engine_for(postgres_url)))
                                  for _ in range(3))  # three workers on one PostgreSQL
    t = trade("40.00")
    proposal = await proposer.arun("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "4"},
                                   idempotency_key=uuid.uuid4().hex)
    done, late = await asyncio.gather(confirmer.aconfirm(proposal.token), third.aconfirm(proposal.token),
                                      return_exceptions=True)
    outcomes = sorted([type(done).__name__, type(late).__name__])
    assert outcomes == ["PaymentResult", "PolicyError"]
    assert _refunds(alipay_emulator) == (1, 1)


async def test_a_cancel_of_a_paid_trade_counts_against_the_caps(settings, trade, alipay_emulator) -> None:
    kit = _toolkit(settings, refund_cap_per_day="10")
    paid = trade("9.00")
    await kit.arun("cancel_payment", {"out_trade_no": paid["out_trade_no"]}, idempotency_key="cancel-key-1")
    other = trade("9.00")
    with pytest.raises(PolicyError) as capped:
        await kit.arun("refund", {"out_trade_no": other["out_trade_no"], "refund_amount": "2"},
                       idempotency_key="refund-key-2")
    assert "refund_cap_per_day" in capped.value.setting
    assert _refunds(alipay_emulator) == (1, 0)


async def test_bad_input_names_the_field(settings, trade) -> None:
    kit = _toolkit(settings)
    t = trade("10.00")
    for args, key, field in [
        ({"out_trade_no": t["out_trade_no"], "refund_amount": "1.001"}, KEY, "refund_amount"),
        ({"out_trade_no": t["out_trade_no"], "refund_amount": "1"}, None, "idempotency_key"),
        ({"refund_amount": "1"}, KEY, "out_trade_no"),
    ]:
        with pytest.raises(ConfigurationError) as bad:
            await kit.arun("refund", args, idempotency_key=key)
        assert bad.value.setting == field


async def test_close_cancel_precreate_and_bill(settings, trade, alipay_emulator) -> None:
    from datetime import date, timedelta

    kit = _toolkit(settings)
    unpaid, paid = trade("9.00", trade_status="WAIT_BUYER_PAY"), trade("9.00")
    assert (await kit.arun("close_payment", {"out_trade_no": unpaid["out_trade_no"]})).result is ResultClass.SUCCEEDED
    refused = await kit.arun("close_payment", {"out_trade_no": paid["out_trade_no"]})
    assert (refused.result, refused.sub_code) == (ResultClass.FAILED, "ACQ.TRADE_STATUS_ERROR")
    with pytest.raises(ConfigurationError) as keyless:  # a cancel of a paid trade refunds it: a key is required
        await kit.arun("cancel_payment", {"trade_no": paid["trade_no"]})
    assert keyless.value.setting == "idempotency_key"
    cancelled = await kit.arun("cancel_payment", {"trade_no": paid["trade_no"]}, idempotency_key=KEY)
    assert cancelled.to_dict()["action"] == "refund" and not cancelled.replayed
    again = await kit.arun("cancel_payment", {"trade_no": paid["trade_no"]}, idempotency_key=KEY)
    assert again.replayed and again.to_dict()["action"] == "refund"
    assert alipay_emulator.stats()["requests_by_method"]["alipay.trade.cancel"] == 1  # the retry: from the ledger
    qr = await kit.arun("create_payment", {"out_trade_no": "qr-kit-1", "total_amount": 3, "subject": "tea"})
    assert qr.to_dict()["qr_code"].startswith("https://qr.alipay.com/")
    bill = await kit.arun("bill_download_url", {"bill_date": (date.today() - timedelta(days=3)).isoformat()})
    assert bill.to_dict()["bill_download_url"].startswith("https://")


def test_sync_driver_and_audit_lines(settings, trade, alipay_emulator, tmp_path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    t = trade("100.00")
    kit = _toolkit(settings, audit)
    result = kit.run("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "8.00"}, idempotency_key=KEY,
                     tenant="shop-7", trace_id="trace-1")
    assert result.result is ResultClass.SUCCEEDED
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [r["event"] for r in lines] == ["attempt", "outcome"]
    outcome = lines[-1]
    assert outcome["result"] == "succeeded" and outcome["amount"] == "8.00" and outcome["tenant"] == "shop-7"
    assert outcome["trace_id"] == "trace-1" and outcome["out_request_no"] == result.out_request_no
    assert outcome["trade_no"] == t["trade_no"] and outcome["method"] == "alipay.trade.refund"
    assert KEY not in (tmp_path / "audit.jsonl").read_text()  # the idempotency key is the caller's secret


def test_page_and_wap_links_are_signed_without_a_server_call(settings, alipay_emulator) -> None:
    from urllib.parse import parse_qs, urlsplit

    from litellm_alipay.wire.signing import load_private_key, verify_params

    kit = _toolkit(settings)
    url = kit.payment_link(out_trade_no="web-1", total_amount=19.9, subject="书", return_url="https://shop/r")
    params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert params["method"] == "alipay.trade.page.pay" and '"total_amount":"19.90"' in params["biz_content"]
    assert verify_params(params, load_private_key(alipay_emulator.app_private_key).public_key())
    form = kit.payment_link(out_trade_no="wap-1", total_amount="1", subject="x", mobile=True, form=True)
    assert "alipay.trade.wap.pay" in form and "QUICK_WAP_WAY" in form and "document.forms[0].submit()" in form
    assert alipay_emulator.stats()["requests_total"] == 0


async def test_the_preflight_refuses_unrefundable_trades_without_sending(settings, trade, alipay_emulator,
                                                                         tmp_path) -> None:
    kit = _toolkit(settings, AuditLog(tmp_path / "audit.jsonl"))
    finished, unpaid = trade("5.00", trade_status="TRADE_FINISHED"), trade("5.00", trade_status="WAIT_BUYER_PAY")
    results = [await kit.arun("refund", {"out_trade_no": no, "refund_amount": "1"}, idempotency_key=f"{KEY}-{no}")
               for no in (finished["out_trade_no"], unpaid["out_trade_no"], "no-such-order")]
    assert [(r.result, r.sent, r.method) for r in results] == [(ResultClass.FAILED, False, "alipay.trade.refund")] * 3
    assert "TRADE_FINISHED" in results[0].explanation and "WAIT_BUYER_PAY" in results[1].explanation
    assert results[2].sub_code == "ACQ.TRADE_NOT_EXIST"
    assert _refunds(alipay_emulator) == (0, 0)
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(r["event"], r["result"]) for r in lines] == [("outcome", "failed")] * 3


async def test_one_key_is_one_action_another_trade_under_it_is_refused(settings, trade, alipay_emulator) -> None:
    """An MCP agent (or a direct caller) whose model changes the trade on a retry gets a refusal, not a second
    refund; a door whose one request may act on several trades (the action loop, an agent run) says so."""
    kit = _toolkit(settings)
    a, b = trade("50.00"), trade("50.00")
    await kit.arun("refund", {"out_trade_no": a["out_trade_no"], "refund_amount": "5"}, idempotency_key=KEY)
    with pytest.raises(ConfigurationError) as other_trade:
        await kit.arun("refund", {"out_trade_no": b["out_trade_no"], "refund_amount": "5"}, idempotency_key=KEY)
    assert other_trade.value.setting == "idempotency_key" and "different request" in str(other_trade.value)
    assert _refunds(alipay_emulator) == (1, 1)
    loop_key = "loop-" + uuid.uuid4().hex
    for t in (a, b):
        done = await kit.arun("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "2"},
                              idempotency_key=loop_key, several=True)
        assert done.result is ResultClass.SUCCEEDED
    assert _refunds(alipay_emulator) == (3, 3)
