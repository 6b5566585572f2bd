"""The payment tools in the real OpenAI Agents SDK: an ``Agent`` run by ``Runner`` on a model (the emulator's
OpenAI-compatible endpoint, and ``alipay/ant-fin-chat`` through the SDK's LiteLLM model) calls the tools
against the emulator's trades; the key comes from the run context, never the model."""

from __future__ import annotations

import json

import pytest
from agents import Agent, ModelSettings, RunConfig, Runner
from agents.exceptions import UserError
from agents.extensions.models.litellm_model import LitellmModel
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from openai import AsyncOpenAI

import litellm_alipay
from litellm_alipay.errors import ConfigurationError, MissingIdempotencyKeyError
from litellm_alipay.payments import AuditLog, PaymentPolicy, PaymentToolkit, PaymentTools
from litellm_alipay.payments.adapters import PaymentRunContext
from litellm_alipay.payments.adapters.openai_agents import function_tools

# the SDK's LiteLLM model builds pydantic schemas of LiteLLM's TypedDicts, which warn about ReadOnly items
pytestmark = pytest.mark.filterwarnings("ignore:Items? .*ReadOnly:UserWarning")

RUN = RunConfig(tracing_disabled=True)  # no trace export: every byte stays on loopback


def _tools(settings, audit=None, **policy) -> PaymentTools:
    return PaymentTools(PaymentToolkit(settings, PaymentPolicy.from_mapping(policy), audit))


def _agent(emu, tools: PaymentTools) -> Agent:
    model = OpenAIChatCompletionsModel(
        model="ant-fin-chat", openai_client=AsyncOpenAI(base_url=f"{emu.base_url}/v1", api_key="unused"))
    return Agent(name="refunds", instructions="Refund what the user asks for.", model=model,
                 tools=function_tools(tools))


def _trade_methods(emu) -> set[str]:
    return {m for m in emu.stats()["requests_by_method"] if m.startswith("alipay.trade")}


def test_the_tools_are_the_enabled_actions_with_their_schemas(settings) -> None:
    tools = _tools(settings, enabled_actions=["refund"])
    agents_tools = function_tools(tools)
    assert [t.name for t in agents_tools] == [d["function"]["name"] for d in tools.definitions()]
    refund = next(t for t in agents_tools if t.name == "refund")
    assert refund.params_json_schema == next(
        d for d in tools.definitions() if d["function"]["name"] == "refund")["function"]["parameters"]
    assert "idempotency_key" not in refund.params_json_schema["properties"]  # the model never supplies it


async def test_an_agent_refunds_once_per_logical_request(settings, trade, alipay_emulator, tmp_path) -> None:
    t = trade("40.00")
    audit = tmp_path / "audit.jsonl"
    agent = _agent(alipay_emulator, _tools(settings, AuditLog(audit), enabled_actions=["refund"]))
    ask = f"refund out_trade_no={t['out_trade_no']} refund_amount=6.00"

    first = PaymentRunContext(idempotency_key="ticket-agents-0001", tenant="user-7")
    result = await Runner.run(agent, ask, context=first, run_config=RUN)
    assert [o.content["result"] for o in first.outcomes] == ["succeeded"]
    assert result.final_output.startswith("Tool result: ")  # the model read the tool's JSON
    assert json.loads(result.final_output.removeprefix("Tool result: "))["result"] == "succeeded"

    retried = PaymentRunContext(idempotency_key="ticket-agents-0001", tenant="user-7")  # the same request again
    await Runner.run(agent, ask, context=retried, run_config=RUN)
    assert retried.outcomes[0].content["replayed"] is True  # answered from the money ledger
    assert retried.outcomes[0].content["out_request_no"] == first.outcomes[0].content["out_request_no"]
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 1

    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert {line["tenant"] for line in lines if line.get("action") == "refund"} == {"user-7"}


@pytest.mark.parametrize("context", [None, PaymentRunContext(), PaymentRunContext(idempotency_key="short")],
                         ids=["no-context", "no-key", "malformed-key"])
async def test_a_money_moving_call_without_a_key_fails_the_run_before_anything_is_sent(
        context, settings, trade, alipay_emulator) -> None:
    t = trade("40.00")
    agent = _agent(alipay_emulator, _tools(settings, enabled_actions=["refund"]))
    with pytest.raises(MissingIdempotencyKeyError, match="idempotency_key") as caught:
        await Runner.run(agent, f"refund out_trade_no={t['out_trade_no']} refund_amount=6.00", context=context,
                         run_config=RUN)
    assert isinstance(caught.value, ConfigurationError) and isinstance(caught.value, UserError)
    assert caught.value.setting == "idempotency_key" and caught.value.tool == "refund"
    assert "PaymentRunContext" in str(caught.value)
    assert _trade_methods(alipay_emulator) == set()
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 0


async def test_read_only_tools_need_no_key(settings, trade, alipay_emulator) -> None:
    t = trade("12.00")
    agent = _agent(alipay_emulator, _tools(settings))
    result = await Runner.run(agent, f"query_payment out_trade_no={t['out_trade_no']}", run_config=RUN)
    answer = json.loads(result.final_output.removeprefix("Tool result: "))
    assert answer["result"] == "succeeded" and answer["total_amount"] == "12.00"


async def test_a_proposal_reaches_the_application_not_the_model(settings, trade, alipay_emulator) -> None:
    t = trade("40.00")
    tools = _tools(settings, enabled_actions=["refund"], confirm=True)
    context = PaymentRunContext(idempotency_key="ticket-agents-0002")
    result = await Runner.run(_agent(alipay_emulator, tools),
                              f"refund out_trade_no={t['out_trade_no']} refund_amount=2.50", context=context,
                              run_config=RUN)
    [proposal] = context.proposals
    assert proposal.token not in json.dumps([item.raw_item for item in result.new_items], default=str)
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 0
    assert tools.toolkit.confirm(proposal.token).node["fund_change"] == "Y"
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 1


async def test_a_policy_refusal_is_for_the_model(settings, trade, alipay_emulator) -> None:
    t = trade("400.00")
    context = PaymentRunContext(idempotency_key="ticket-agents-0003")
    result = await Runner.run(_agent(alipay_emulator, _tools(settings, enabled_actions=["refund"],
                                                             refund_cap_per_call="100.00")),
                              f"refund out_trade_no={t['out_trade_no']} refund_amount=150.00", context=context,
                              run_config=RUN)
    answer = json.loads(result.final_output.removeprefix("Tool result: "))
    assert answer["result"] == "refused" and answer["setting"].startswith("payments.refund_cap_per_call")
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 0


async def test_an_agent_on_an_alipay_model_through_litellm(settings, trade, alipay_emulator) -> None:
    """The SDK's LiteLLM model on ``alipay/ant-fin-chat``: the gateway model calls the payment tool."""
    litellm_alipay.register()
    t = trade("40.00")
    model = LitellmModel(model="alipay/ant-fin-chat")
    agent = Agent(name="refunds", instructions="Refund what the user asks for.", model=model,
                  model_settings=ModelSettings(extra_args={
                      "app_id": settings.app_id, "app_private_key": alipay_emulator.app_private_key_path,
                      "alipay_public_key": alipay_emulator.alipay_public_key_path,
                      "api_base": alipay_emulator.gateway_url}),
                  tools=function_tools(_tools(settings, enabled_actions=["refund"])))
    context = PaymentRunContext(idempotency_key="ticket-agents-0004")
    result = await Runner.run(agent, f"refund out_trade_no={t['out_trade_no']} refund_amount=3.00",
                              context=context, run_config=RUN)
    assert [o.content["result"] for o in context.outcomes] == ["succeeded"]
    assert result.final_output.startswith("Tool result: ")
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 1
