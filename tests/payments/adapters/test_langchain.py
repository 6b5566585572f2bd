"""The payment tools in real LangChain: ``ChatOpenAI`` (on the emulator's OpenAI-compatible endpoint) bound to
the structured tools calls them, the tools run against the emulator's trades with the key from the
``RunnableConfig``, and the model reads the results; the artifact is the application's."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai import ChatOpenAI

from litellm_alipay.errors import ConfigurationError, MissingIdempotencyKeyError
from litellm_alipay.payments import PaymentPolicy, PaymentToolkit, PaymentTools
from litellm_alipay.payments.adapters import PaymentRunContext
from litellm_alipay.payments.adapters.langchain import structured_tools
from litellm_alipay.payments.tools import ToolOutcome


def _tools(settings, **policy) -> PaymentTools:
    return PaymentTools(PaymentToolkit(settings, PaymentPolicy.from_mapping(policy)))


def _model(emu) -> ChatOpenAI:
    return ChatOpenAI(model="ant-fin-chat", base_url=f"{emu.base_url}/v1", api_key="unused", max_retries=0)


def _config(context: PaymentRunContext | None) -> dict:
    return {"configurable": {"payment_context": context}}


def test_the_tools_are_the_enabled_actions_with_their_schemas(settings) -> None:
    tools = _tools(settings, enabled_actions=["refund"])
    lc_tools = structured_tools(tools)
    assert [t.name for t in lc_tools] == [d["function"]["name"] for d in tools.definitions()]
    refund = next(t for t in lc_tools if t.name == "refund")
    parameters = next(d for d in tools.definitions() if d["function"]["name"] == "refund")["function"]["parameters"]
    assert refund.args_schema == parameters
    offered = convert_to_openai_tool(refund)["function"]  # what bind_tools sends the model
    assert offered["parameters"]["properties"] == parameters["properties"]
    assert "idempotency_key" not in offered["parameters"]["properties"]  # the model never supplies it


async def test_a_model_refunds_once_per_logical_request(settings, trade, alipay_emulator) -> None:
    t = trade("40.00")
    lc_tools = {tool.name: tool for tool in structured_tools(_tools(settings, enabled_actions=["refund"]))}
    model = _model(alipay_emulator).bind_tools(list(lc_tools.values()))
    messages = [HumanMessage(f"refund out_trade_no={t['out_trade_no']} refund_amount=6.00")]
    context = PaymentRunContext(idempotency_key="ticket-lc-0001", tenant="user-9")

    ai = await model.ainvoke(messages, config=_config(context))
    [call] = ai.tool_calls
    assert call["name"] == "refund" and "idempotency_key" not in call["args"]
    message = await lc_tools["refund"].ainvoke(call, config=_config(context))
    assert isinstance(message, ToolMessage) and message.tool_call_id == call["id"]
    assert json.loads(message.content)["result"] == "succeeded"
    assert isinstance(message.artifact, ToolOutcome) and message.artifact is context.outcomes[0]

    final = await model.ainvoke([*messages, ai, message], config=_config(context))
    assert json.loads(final.content.removeprefix("Tool result: "))["result"] == "succeeded"

    retried = PaymentRunContext(idempotency_key="ticket-lc-0001", tenant="user-9")  # the same request again
    again = await lc_tools["refund"].ainvoke(call, config=_config(retried))
    assert json.loads(again.content)["replayed"] is True  # answered from the money ledger
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 1


@pytest.mark.parametrize("config", [None, _config(None), _config(PaymentRunContext())],
                         ids=["no-config", "no-context", "no-key"])
async def test_a_money_moving_call_without_a_key_raises_before_anything_is_sent(
        config, settings, trade, alipay_emulator) -> None:
    t = trade("40.00")
    refund = next(tool for tool in structured_tools(_tools(settings, enabled_actions=["refund"]))
                  if tool.name == "refund")
    call = {"name": "refund", "args": {"out_trade_no": t["out_trade_no"], "refund_amount": "6.00"},
            "id": "call_1", "type": "tool_call"}
    with pytest.raises(MissingIdempotencyKeyError, match="payment_context") as caught:
        await refund.ainvoke(call, config=config)
    assert caught.value.setting == "idempotency_key" and caught.value.tool == "refund"
    assert not any(m.startswith("alipay.trade") for m in alipay_emulator.stats()["requests_by_method"])


def test_a_context_of_the_wrong_type_is_named(settings) -> None:
    refund = next(tool for tool in structured_tools(_tools(settings, enabled_actions=["refund"]))
                  if tool.name == "refund")
    with pytest.raises(ConfigurationError, match=r'configurable\["payment_context"\]: must be a PaymentRunContext'):
        refund.invoke({"out_trade_no": "T1", "refund_amount": "1.00"},
                      config={"configurable": {"payment_context": {"idempotency_key": "ticket-lc-0009"}}})


def test_the_sync_path_and_a_proposal_for_the_application(settings, trade, alipay_emulator) -> None:
    t = trade("40.00")
    tools = _tools(settings, enabled_actions=["refund"], confirm=True)
    refund = next(tool for tool in structured_tools(tools) if tool.name == "refund")
    context = PaymentRunContext(idempotency_key="ticket-lc-0002")
    call = {"name": "refund", "args": {"out_trade_no": t["out_trade_no"], "refund_amount": "2.50"},
            "id": "call_2", "type": "tool_call"}
    message = refund.invoke(call, config=_config(context))  # sync: the one async implementation, driven
    [proposal] = context.proposals
    assert json.loads(message.content)["result"] == "needs_confirmation"
    assert proposal.token not in message.content and message.artifact.proposal is proposal
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 0
    assert tools.toolkit.confirm(proposal.token).node["fund_change"] == "Y"
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 1


async def test_read_only_tools_need_no_key(settings, trade, alipay_emulator) -> None:
    t = trade("12.00")
    query = next(tool for tool in structured_tools(_tools(settings)) if tool.name == "query_payment")
    content = await query.ainvoke({"out_trade_no": t["out_trade_no"]})
    assert json.loads(content)["total_amount"] == "12.00"
