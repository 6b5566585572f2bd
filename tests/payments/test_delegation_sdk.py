"""The oracle for Delegation Pay: Alipay's official Python SDK request classes drive the emulator's five
methods (apply signed with ``sdk_execute`` and approved by the stand-in user; query, prepay, pay and
cancel through ``execute``, which raises unless the emulator's signature verifies), and the SDK's own
response classes read the documented fields. Our own client signs an apply string the same stand-in user
accepts, so both sides agree on the wire."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta

import pytest
from alipay.aop.api.domain.AccessParams import AccessParams
from alipay.aop.api.domain.AlipayTradeAgentDelegationPayModel import AlipayTradeAgentDelegationPayModel
from alipay.aop.api.domain.AlipayTradeOrderPrepayModel import AlipayTradeOrderPrepayModel
from alipay.aop.api.domain.AlipayUserAgreementDelegationApplyModel import AlipayUserAgreementDelegationApplyModel
from alipay.aop.api.domain.AlipayUserAgreementDelegationCancelModel import AlipayUserAgreementDelegationCancelModel
from alipay.aop.api.domain.AlipayUserAgreementDelegationQueryModel import AlipayUserAgreementDelegationQueryModel
from alipay.aop.api.domain.Conversation import Conversation
from alipay.aop.api.domain.DelegationParams import DelegationParams
from alipay.aop.api.request.AlipayTradeAgentDelegationPayRequest import AlipayTradeAgentDelegationPayRequest
from alipay.aop.api.request.AlipayTradeOrderPrepayRequest import AlipayTradeOrderPrepayRequest
from alipay.aop.api.request.AlipayUserAgreementDelegationApplyRequest import AlipayUserAgreementDelegationApplyRequest
from alipay.aop.api.request.AlipayUserAgreementDelegationCancelRequest import (
    AlipayUserAgreementDelegationCancelRequest,
)
from alipay.aop.api.request.AlipayUserAgreementDelegationQueryRequest import AlipayUserAgreementDelegationQueryRequest
from alipay.aop.api.response.AlipayTradeAgentDelegationPayResponse import AlipayTradeAgentDelegationPayResponse
from alipay.aop.api.response.AlipayTradeOrderPrepayResponse import AlipayTradeOrderPrepayResponse
from alipay.aop.api.response.AlipayUserAgreementDelegationCancelResponse import (
    AlipayUserAgreementDelegationCancelResponse,
)
from alipay.aop.api.response.AlipayUserAgreementDelegationQueryResponse import (
    AlipayUserAgreementDelegationQueryResponse,
)

from litellm_alipay.emulator.process import EmulatorError, EmulatorProcess
from litellm_alipay.payments.agent import delegation_wire as dw
from litellm_alipay.payments.agent.delegation import DelegationMethods
from litellm_alipay.payments.methods import PaymentMethods


def _ids() -> tuple[str, str]:
    tail = uuid.uuid4().hex[:16]
    return "EA" + tail, "ED" + tail


def _apply(sdk, amount: str = "50.00", times: str | None = "3", days: int = 7) -> tuple[str, str, str]:
    """The SDK-signed apply string (no gateway round trip) and its external ids."""
    agreement, task = _ids()
    params = DelegationParams()
    params.external_delegation_id = task
    params.delegation_desc = "买两张高铁票"
    params.delegation_tag = "train ticket"
    params.max_total_amount = amount
    if times:
        params.times_limit = times
    params.validity_start_time = date.today().isoformat()
    params.validity_end_time = (date.today() + timedelta(days=days)).isoformat()
    access = AccessParams()
    access.channel = "ALIPAYAPP"
    said = Conversation()
    said.role, said.content, said.create_time = "USER", "帮我抢两张票", "2026-01-20 10:00:00"
    model = AlipayUserAgreementDelegationApplyModel()
    model.agent_id = "agent001"
    model.external_agreement_no = agreement
    model.personal_product_code = "UAM_AGENT_AUTH_P"
    model.delegation_params = params
    model.access_params = access
    model.conversation_history = [said]
    return sdk.sdk_execute(AlipayUserAgreementDelegationApplyRequest(biz_model=model)), agreement, task


def _query(sdk, **ids: str) -> AlipayUserAgreementDelegationQueryResponse:
    model = AlipayUserAgreementDelegationQueryModel()
    for name, value in ids.items():
        setattr(model, name, value)
    response = AlipayUserAgreementDelegationQueryResponse()
    response.parse_response_content(sdk.execute(AlipayUserAgreementDelegationQueryRequest(biz_model=model)))
    return response


def _prepay(sdk, out_trade_no: str, amount: str, agent: bool = True) -> AlipayTradeOrderPrepayResponse:
    model = AlipayTradeOrderPrepayModel()
    model.out_trade_no, model.total_amount, model.subject = out_trade_no, amount, "G102 二等座"
    if agent:
        model.product_code, model.payment_type = "QUICK_MSECURITY_PAY", "agent_pay"
    response = AlipayTradeOrderPrepayResponse()
    response.parse_response_content(sdk.execute(AlipayTradeOrderPrepayRequest(biz_model=model)))
    return response


def _pay(sdk, prepay_id: str, agreement_no: str, delegation_id: str) -> AlipayTradeAgentDelegationPayResponse:
    model = AlipayTradeAgentDelegationPayModel()
    model.prepay_id, model.agreement_no, model.delegation_id = prepay_id, agreement_no, delegation_id
    response = AlipayTradeAgentDelegationPayResponse()
    response.parse_response_content(sdk.execute(AlipayTradeAgentDelegationPayRequest(biz_model=model)))
    return response


def _cancel(sdk, agreement_no: str, delegation_id: str) -> AlipayUserAgreementDelegationCancelResponse:
    model = AlipayUserAgreementDelegationCancelModel()
    model.agreement_no, model.delegation_id = agreement_no, delegation_id
    response = AlipayUserAgreementDelegationCancelResponse()
    response.parse_response_content(sdk.execute(AlipayUserAgreementDelegationCancelRequest(biz_model=model)))
    return response


def test_the_sdk_drives_a_mandate_through_its_life(sdk, alipay_emulator: EmulatorProcess) -> None:
    order_str, agreement, task = _apply(sdk)
    approved = alipay_emulator.approve_delegation(order_str)
    assert approved["resultStatus"] == "9000" and approved["status"] == "NORMAL"
    agreement_no, delegation_id = approved["agreement_no"], approved["delegation_id"]
    again = alipay_emulator.approve_delegation(order_str)  # the same external ids: the same mandate
    assert (again["agreement_no"], again["delegation_id"]) == (agreement_no, delegation_id)

    by_external = _query(sdk, external_agreement_no=agreement, external_delegation_id=task)
    assert (by_external.code, by_external.status, by_external.delegation_id) == ("10000", "NORMAL", delegation_id)
    assert (by_external.max_total_amount, by_external.remaining_amount) == ("50.00", "50.00")
    assert (by_external.times_limit, by_external.remaining_times) == ("3", "3")
    assert by_external.validity_end_time.endswith(" 00:00:00")

    order = "AP" + uuid.uuid4().hex[:20]
    prepaid = _prepay(sdk, order, "20.00")
    assert prepaid.code == "10000" and prepaid.prepay_id and prepaid.out_trade_no == order
    assert _prepay(sdk, order, "20.00").prepay_id == prepaid.prepay_id  # idempotent per out_trade_no
    assert _prepay(sdk, order, "21.00").sub_code == "CONTEXT_INCONSISTENT"
    paid = _pay(sdk, prepaid.prepay_id, agreement_no, delegation_id)
    assert paid.code == "10000" and paid.trade_no
    twice = _pay(sdk, prepaid.prepay_id, agreement_no, delegation_id)
    assert twice.sub_code == "ACQ.TRADE_HAS_SUCCESS"  # the same prepay never pays twice
    assert _prepay(sdk, order, "20.00").sub_code == "TRADE_HAS_SUCCESS"

    left = _query(sdk, agreement_no=agreement_no, delegation_id=delegation_id)
    assert (left.remaining_amount, left.remaining_times, left.status) == ("30.00", "2", "NORMAL")
    over = _prepay(sdk, "AP" + uuid.uuid4().hex[:20], "30.01")
    assert _pay(sdk, over.prepay_id, agreement_no, delegation_id).sub_code == "ACQ.BEYOND_PAY_RESTRICTION"

    cancelled = _cancel(sdk, agreement_no, delegation_id)
    assert cancelled.code == "10000"
    assert _query(sdk, agreement_no=agreement_no, delegation_id=delegation_id).status == "CANCELLED"
    assert _cancel(sdk, agreement_no, delegation_id).code == "10000"  # cancel again: still cancelled
    late = _prepay(sdk, "AP" + uuid.uuid4().hex[:20], "1.00")
    assert _pay(sdk, late.prepay_id, agreement_no, delegation_id).sub_code == "ACQ.AGREEMENT_STATUS_NOT_NORMAL"
    stats = alipay_emulator.stats()
    assert stats["delegations"]["payments_executed"] == 1 and stats["delegations"]["paid_amount"] == "20.00"
    assert stats["requests_by_method"][dw.PAY] == 4


def test_count_exhaustion_finishes_expiry_and_termination_stop_payments(sdk, alipay_emulator) -> None:
    order_str, _, _ = _apply(sdk, amount="10.00", times="1", days=2)
    approved = alipay_emulator.approve_delegation(order_str)
    ids = (approved["agreement_no"], approved["delegation_id"])
    first = _prepay(sdk, "AP" + uuid.uuid4().hex[:20], "1.00")
    assert _pay(sdk, first.prepay_id, *ids).code == "10000"
    assert _query(sdk, agreement_no=ids[0], delegation_id=ids[1]).status == "FINISHED"

    order_str, _, _ = _apply(sdk, amount="10.00", times=None, days=2)
    approved = alipay_emulator.approve_delegation(order_str)
    ids = (approved["agreement_no"], approved["delegation_id"])
    waiting = _prepay(sdk, "AP" + uuid.uuid4().hex[:20], "1.00")
    alipay_emulator.advance_clock(days=2)  # the end date's 00:00:00 has passed
    assert _query(sdk, agreement_no=ids[0], delegation_id=ids[1]).status == "EXPIRED"
    assert _pay(sdk, waiting.prepay_id, *ids).sub_code == "ACQ.ORDER_NOT_EXIST"  # two days: the prepay is gone too

    order_str, _, _ = _apply(sdk, amount="10.00", times=None, days=5)
    approved = alipay_emulator.approve_delegation(order_str)
    ids = (approved["agreement_no"], approved["delegation_id"])
    alipay_emulator.terminate_agreement(ids[0])
    assert _query(sdk, agreement_no=ids[0], delegation_id=ids[1]).status == "TERMINATE"
    after = _prepay(sdk, "AP" + uuid.uuid4().hex[:20], "1.00")
    assert _pay(sdk, after.prepay_id, *ids).sub_code == "ACQ.AGREEMENT_NOT_EXIST"


def test_prepay_outside_the_agent_scenario_has_no_prepay_id(sdk, alipay_emulator) -> None:
    plain = _prepay(sdk, "AP" + uuid.uuid4().hex[:20], "5.00", agent=False)
    assert plain.code == "10000" and not plain.prepay_id


def test_the_stand_in_user_checks_the_apps_signature_and_reads_refusals(sdk, alipay_emulator) -> None:
    order_str, agreement, task = _apply(sdk)
    params = dw.read_order_str(order_str)
    biz = json.loads(params["biz_content"])
    biz["delegation_params"]["max_total_amount"] = "5000.00"  # tampered after signing
    forged = order_str.replace("biz_content=", "x=", 1) + "&biz_content=" + json.dumps(biz)
    with pytest.raises(EmulatorError, match="400"):
        alipay_emulator.approve_delegation(forged)
    refused = alipay_emulator.approve_delegation(order_str, "refuse")
    assert refused["status"] == "INVALID" and refused["resultStatus"] == "6001"
    missing = _query(sdk, external_agreement_no=agreement, external_delegation_id=task)
    assert missing.sub_code == "USER_AGREEMENT_NOT_EXIST"


async def test_our_apply_string_is_accepted_like_the_sdks(settings, alipay_emulator) -> None:
    calls = DelegationMethods(PaymentMethods(settings))
    agreement, task = _ids()
    mandate = dw.delegation_params(external_delegation_id=task, delegation_desc="monitor and buy", max_total_amount=9,
                                   validity_start=date.today(), validity_end=date.today() + timedelta(days=1))
    signed = calls.apply(agent_id="agent001", external_agreement_no=agreement, mandate=mandate)
    assert "sign=" in signed.order_str and "order_str" not in repr(signed)  # the signed string stays out of logs
    approved = alipay_emulator.approve_delegation(signed.order_str)
    result = await calls.query(agreement_no=approved["agreement_no"], delegation_id=approved["delegation_id"])
    assert result.result.value == "succeeded" and result.node["remaining_amount"] == "9.00"
    assert result.node["external_delegation_id"] == task
