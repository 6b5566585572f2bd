"""The oracle: Alipay's official Python SDK, with its own A2M request and model classes, drives the
emulator's ``alipay.aipay.agent.payment.verify`` and ``fulfillment.confirm`` (``execute`` verifies each
answer's signature) after the buyer stand-in paid a bill this package signed."""

from __future__ import annotations

from alipay.aop.api.domain.AlipayAipayAgentFulfillmentConfirmModel import AlipayAipayAgentFulfillmentConfirmModel
from alipay.aop.api.domain.AlipayAipayAgentPaymentVerifyModel import AlipayAipayAgentPaymentVerifyModel
from alipay.aop.api.request.AlipayAipayAgentFulfillmentConfirmRequest import AlipayAipayAgentFulfillmentConfirmRequest
from alipay.aop.api.request.AlipayAipayAgentPaymentVerifyRequest import AlipayAipayAgentPaymentVerifyRequest
from alipay.aop.api.response.AlipayAipayAgentFulfillmentConfirmResponse import (
    AlipayAipayAgentFulfillmentConfirmResponse,
)
from alipay.aop.api.response.AlipayAipayAgentPaymentVerifyResponse import AlipayAipayAgentPaymentVerifyResponse

from litellm_alipay.errors import PaymentRequiredError
from litellm_alipay.payments.agent import headers

from .conftest import proof_for


def _verify(sdk, proof: headers.Proof) -> AlipayAipayAgentPaymentVerifyResponse:
    model = AlipayAipayAgentPaymentVerifyModel()
    model.trade_no = proof.trade_no
    model.payment_proof = proof.payment_proof
    model.client_session = proof.client_session
    response = AlipayAipayAgentPaymentVerifyResponse()
    response.parse_response_content(sdk.execute(AlipayAipayAgentPaymentVerifyRequest(biz_model=model)))
    return response


async def test_the_official_sdk_verifies_and_confirms_a_paid_bill(sdk, merchant, alipay_emulator):
    try:
        await merchant.admit(None, "/tools/weather")
    except PaymentRequiredError as refused:
        needed = refused.payment_needed
    bill = headers.decode(needed, headers.PAYMENT_NEEDED)
    proof = headers.parse_proof(proof_for(alipay_emulator, needed))

    verified = _verify(sdk, proof)
    assert verified.is_success()
    assert verified.active is True
    assert (verified.amount, verified.out_trade_no, verified.resource_id, verified.trade_no) == (
        "0.01", bill["protocol"]["out_trade_no"], "/tools/weather", proof.trade_no)
    forged = _verify(sdk, headers.Proof(proof.trade_no, "00" * 32, proof.client_session))
    assert forged.is_success() and forged.active is False

    model = AlipayAipayAgentFulfillmentConfirmModel()
    model.trade_no = proof.trade_no
    confirmed = AlipayAipayAgentFulfillmentConfirmResponse()
    confirmed.parse_response_content(sdk.execute(AlipayAipayAgentFulfillmentConfirmRequest(biz_model=model)))
    assert confirmed.is_success() and confirmed.trade_no == proof.trade_no
    assert alipay_emulator.stats()["a2m_trades"][0]["confirmed"] == 1

    model.trade_no = "9" * 32
    missing = AlipayAipayAgentFulfillmentConfirmResponse()
    missing.parse_response_content(sdk.execute(AlipayAipayAgentFulfillmentConfirmRequest(biz_model=model)))
    assert not missing.is_success() and missing.sub_code == "TRADE_NOT_EXIST"
