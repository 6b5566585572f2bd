"""Tools for any model: definitions of the enabled actions, and a real LiteLLM round trip in which a
model (the gateway model, and an OpenAI-compatible one) calls the refund tool and gets the result."""

from __future__ import annotations

import json

import litellm
import pytest

import litellm_alipay
from litellm_alipay.payments import PaymentPolicy, PaymentToolkit, PaymentTools

KEY = "chat-turn-0001"


def _tools(settings, **policy) -> PaymentTools:
    return PaymentTools(PaymentToolkit(settings, PaymentPolicy.from_mapping(policy)))


def test_definitions_follow_the_policy(settings) -> None:
    read_only = [d["function"]["name"] for d in _tools(settings).definitions()]
    assert read_only == ["query_payment", "query_refund", "bill_download_url", "mandate_status"]
    full = _tools(settings, enabled_actions="refund,alipay.trade.close").definitions()
    refund = next(d for d in full if d["function"]["name"] == "refund")
    assert "out_request_no" not in refund["function"]["parameters"]["properties"]
    assert {d["function"]["name"] for d in full} >= {"refund", "close_payment"}


def test_executor_ignores_a_model_invented_request_number(settings, trade, alipay_emulator) -> None:
    t = trade("30.00")
    tools = _tools(settings, enabled_actions=["refund"])
    call = {"id": "call_1", "type": "function", "function": {"name": "refund", "arguments": json.dumps(
        {"out_trade_no": t["out_trade_no"], "refund_amount": "3.00", "out_request_no": "model-invented"})}}
    outcome = tools.execute(call, idempotency_key=KEY)
    assert outcome.content["result"] == "succeeded" and outcome.content["out_request_no"] != "model-invented"
    assert outcome.message["role"] == "tool" and outcome.message["tool_call_id"] == "call_1"
    again = tools.execute(call, idempotency_key=KEY)  # the same logical request, retried
    assert again.content["replayed"] is True and again.content["out_request_no"] == outcome.content["out_request_no"]
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 1


def test_refusals_are_content_not_exceptions(settings, trade) -> None:
    tools = _tools(settings)  # read-only
    t = trade("30.00")
    refused = tools.execute({"id": "c", "function": {"name": "refund", "arguments": json.dumps(
        {"out_trade_no": t["out_trade_no"], "refund_amount": "1"})}}, idempotency_key=KEY)
    assert refused.content == {"result": "refused",
                               "setting": "payments.enabled_actions (ALIPAY_PAYMENTS_ENABLED_ACTIONS)",
                               "explanation": refused.content["explanation"]}
    bad = tools.execute({"id": "c", "function": {"name": "query_payment", "arguments": "{not json"}})
    assert bad.content["setting"] == "arguments"


def test_a_confirmation_proposal_reaches_the_caller_not_the_model(settings, trade, alipay_emulator) -> None:
    t = trade("30.00")
    tools = _tools(settings, enabled_actions=["refund"], confirm=True)
    outcome = tools.execute({"id": "c", "function": {"name": "refund", "arguments": json.dumps(
        {"out_trade_no": t["out_trade_no"], "refund_amount": "2.5"})}}, idempotency_key=KEY)
    assert outcome.content["proposal"] is True and outcome.proposal is not None
    assert outcome.proposal.token not in outcome.message["content"]
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 0
    assert tools.toolkit.confirm(outcome.proposal.token).node["fund_change"] == "Y"


@pytest.mark.parametrize("backend", ["alipay", "openai"])
async def test_any_litellm_model_can_refund_through_the_tools(backend, settings, trade, alipay_emulator) -> None:
    litellm_alipay.register()
    t = trade("50.00")
    tools = _tools(settings, enabled_actions=["refund"])
    if backend == "alipay":
        route = {"model": "alipay/ant-fin-chat", "app_id": settings.app_id,
                 "app_private_key": alipay_emulator.app_private_key_path,
                 "alipay_public_key": alipay_emulator.alipay_public_key_path, "api_base": alipay_emulator.gateway_url}
    else:  # any OpenAI-compatible model: the emulator's /v1 stands for one
        route = {"model": "openai/ant-fin-chat", "api_base": f"{alipay_emulator.base_url}/v1", "api_key": "unused"}
    messages = [{"role": "user", "content": f"refund out_trade_no={t['out_trade_no']} refund_amount=7.00"}]
    reply = await litellm.acompletion(messages=messages, tools=tools.definitions(), **route)
    calls = reply.choices[0].message.tool_calls
    assert calls and calls[0].function.name == "refund"
    outcomes = await tools.aexecute_all(calls, idempotency_key=f"{KEY}-{backend}")
    assert outcomes[0].content["result"] == "succeeded" and outcomes[0].content["refund_fee"] == "7.00"
    messages += [reply.choices[0].message.model_dump(), *(o.message for o in outcomes)]
    final = await litellm.acompletion(messages=messages, tools=tools.definitions(), **route)
    assert "succeeded" in final.choices[0].message.content
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 1
