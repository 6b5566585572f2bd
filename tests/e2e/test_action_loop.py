"""Payment actions inside an ``alipay/`` call to an Ant Ling model (``backends/actions.py``): the provider
runs the tool loop against the real emulator (its deterministic Ling model and its trades), through
``litellm.acompletion`` / ``litellm.completion``: success, a failed action inside a successful answer,
the step limit, the deadline, confirmation, the caller's own tools, and a retried request executing once."""

from __future__ import annotations

import asyncio
import json
import uuid

import litellm
import pytest
from litellm.integrations.custom_logger import CustomLogger

from litellm_alipay.backends import actions
from litellm_alipay.payments.policy import PolicyError

MODEL = "alipay/Ling-2.6-flash"


@pytest.fixture
def trade(alipay_emulator):
    """``trade("88.00", ...)``: a fresh paid trade with a unique out_trade_no."""
    return lambda total, **fields: alipay_emulator.create_trade(f"T{uuid.uuid4().hex[:12]}", total, **fields)


@pytest.fixture
def ling(alipay_emulator, monkeypatch, tmp_path):
    """A Ling deployment allowed to refund; the payments app is the emulator's (``ALIPAY_*`` environment)."""
    for name, value in alipay_emulator.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ALIPAY_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.setenv("ALIPAY_PAYMENTS_REFUND_CAP_PER_CALL", "50.00")
    return {"api_base": alipay_emulator.ant_ling_base, "api_key": alipay_emulator.ant_ling_api_key,
            "allowed_actions": ["REFUND"]}


def _ask(out_trade_no: str, amount: str) -> list[dict]:
    return [{"role": "user", "content": f"refund out_trade_no={out_trade_no} refund_amount={amount}"}]


def _key() -> dict:
    return {"metadata": {"idempotency_key": f"ticket-{uuid.uuid4().hex}"}}


class _Payloads(CustomLogger):
    """What LiteLLM hands a success callback (its standard logging payload)."""

    def __init__(self) -> None:
        super().__init__()
        self.payloads: list[str] = []
        self.logged = asyncio.Event()

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.payloads.append(json.dumps(kwargs.get("standard_logging_object"), default=str))
        self.logged.set()


def _refunds(emu) -> int:
    return emu.stats()["trades"]["refunds_executed"]


async def test_the_model_refunds_in_the_same_call(ling, alipay_emulator, trade, tmp_path):
    t = trade("88.00")
    reply = await litellm.acompletion(model=MODEL, messages=_ask(t["out_trade_no"], "8.00"), **ling, **_key())
    message = reply.choices[0].message
    assert message.content.startswith("Tool result:") and '"fund_change": "Y"' in message.content
    [action] = message.provider_specific_fields["actions"]
    assert action["action"] == "REFUND" and action["status"] == "SUCCESS" and action["amount"] == "8.00"
    assert action["out_trade_no"] == t["out_trade_no"] and action["out_request_no"]
    assert message.provider_specific_fields["action_loop"] == {"steps": 2}
    breakdown = reply._hidden_params["alipay"]["cost_breakdown"]
    assert breakdown["action_fees_cny"] == 0.05  # 0.6 % of 8.00, as the gateway backend charges
    assert reply._hidden_params["alipay"]["cost_cny"] > 0.05  # the tokens' price plus the fee
    assert reply._hidden_params["response_cost"] > 0.05 / 7.1
    assert _refunds(alipay_emulator) == 1
    sent = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [r["event"] for r in sent] == ["attempt", "outcome"]
    first = alipay_emulator.ant_ling_received()[-2]
    assert {tool["function"]["name"] for tool in first["tools"]} == {"query_payment", "query_refund",
                                                                     "bill_download_url", "mandate_status", "refund"}
    assert "allowed_actions" not in first and "out_request_no" not in first


async def test_a_retried_request_refunds_once(ling, alipay_emulator, trade):
    t = trade("88.00")
    key = _key()
    first = await litellm.acompletion(model=MODEL, messages=_ask(t["out_trade_no"], "8.00"), **ling, **key)
    again = await litellm.acompletion(model=MODEL, messages=_ask(t["out_trade_no"], "8.00"), **ling, **key)
    [one], [two] = (r.choices[0].message.provider_specific_fields["actions"] for r in (first, again))
    assert one["out_request_no"] == two["out_request_no"]
    assert two["status"] == "SUCCESS" and two["replayed"] is True
    assert again._hidden_params["alipay"]["cost_breakdown"]["action_fees_cny"] == 0  # nothing moved this time
    assert _refunds(alipay_emulator) == 1


async def test_a_failed_action_inside_a_successful_answer(ling, alipay_emulator, trade):
    t = trade("50.00", refund_error="ACQ.SELLER_BALANCE_NOT_ENOUGH")
    reply = await litellm.acompletion(model=MODEL, messages=_ask(t["out_trade_no"], "5.00"), **ling, **_key())
    [action] = reply.choices[0].message.provider_specific_fields["actions"]
    assert action["status"] == "FAILED" and action["error_code"] == "ACQ.SELLER_BALANCE_NOT_ENOUGH"
    assert reply.choices[0].finish_reason == "stop"
    assert reply._hidden_params["alipay"]["cost_breakdown"]["action_fees_cny"] == 0
    assert _refunds(alipay_emulator) == 0


async def test_the_step_limit_stops_before_executing(ling, alipay_emulator, trade):
    t = trade("88.00")
    reply = await litellm.acompletion(model=MODEL, messages=_ask(t["out_trade_no"], "8.00"), **ling,
                                      action_max_steps=1, **_key())
    fields = reply.choices[0].message.provider_specific_fields
    assert fields["action_loop"] == {"steps": 1, "stopped": "step_limit"} and fields["actions"] == []
    assert "action_max_steps=1" in reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "length"
    assert _refunds(alipay_emulator) == 0


async def test_the_deadline_ends_the_loop_and_the_retry_executes_nothing_again(ling, alipay_emulator, trade):
    t = trade("88.00")
    key = _key()
    alipay_emulator.set_faults([{"kind": "stall_after_actions", "seconds": 30, "methods": ["alipay.trade.refund"],
                                 "next": 1}])
    with pytest.raises(litellm.Timeout):
        await litellm.acompletion(model=MODEL, messages=_ask(t["out_trade_no"], "8.00"), timeout=3, **ling, **key)
    assert _refunds(alipay_emulator) == 1  # executed; its answer lost past the deadline
    alipay_emulator.clear_faults()
    again = await litellm.acompletion(model=MODEL, messages=_ask(t["out_trade_no"], "8.00"), **ling, **key)
    [action] = again.choices[0].message.provider_specific_fields["actions"]
    assert action["status"] == "SUCCESS" and action["replayed"] is True
    assert _refunds(alipay_emulator) == 1


async def test_with_confirmation_the_answer_carries_the_proposal(ling, alipay_emulator, trade, monkeypatch):
    monkeypatch.setenv("ALIPAY_PAYMENTS_CONFIRM", "true")
    t = trade("88.00")
    seen = _Payloads()
    monkeypatch.setattr(litellm, "callbacks", [*litellm.callbacks, seen])
    reply = await litellm.acompletion(model=MODEL, messages=_ask(t["out_trade_no"], "8.00"), **ling, **_key())
    [action] = reply.choices[0].message.provider_specific_fields["actions"]
    assert action["status"] == "PENDING_CONFIRMATION" and _refunds(alipay_emulator) == 0
    [token] = reply._hidden_params["alipay"]["confirmation_tokens"]
    assert token not in reply.model_dump_json()  # the model and the answer's JSON never see it
    await asyncio.wait_for(seen.logged.wait(), 30)  # bounded: the success callback runs after the answer
    assert seen.payloads and all(token not in payload for payload in seen.payloads)  # nor LiteLLM's callbacks
    assert '"proposal": true' in reply.choices[0].message.content
    done = await actions.aconfirm(token)
    assert done.to_dict()["result"] == "succeeded" and _refunds(alipay_emulator) == 1
    with pytest.raises(PolicyError, match="confirmation_token"):
        await actions.aconfirm(token)
    assert _refunds(alipay_emulator) == 1


async def test_the_callers_own_tools_come_back_to_the_caller(ling, alipay_emulator, trade):
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}
    reply = await litellm.acompletion(model=MODEL, tools=[weather], **ling, **_key(),
                                      messages=[{"role": "user", "content": "get_weather city=Hangzhou"}])
    [call] = reply.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Hangzhou"}
    assert reply.choices[0].finish_reason == "tool_calls"
    assert reply.choices[0].message.provider_specific_fields["actions"] == []


def test_streamed_and_sync(ling, alipay_emulator, trade):
    t = trade("88.00")
    stream = litellm.completion(model=MODEL, messages=_ask(t["out_trade_no"], "8.00"), stream=True, **ling,
                                **_key())
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Tool result:") and '"fund_change": "Y"' in text
    [fields] = [c.choices[0].delta.provider_specific_fields for c in chunks
                if c.choices and getattr(c.choices[0].delta, "provider_specific_fields", None)]
    assert [a["status"] for a in fields["actions"]] == ["SUCCESS"]
    assert litellm.stream_chunk_builder(chunks).usage.cost > 0.05 / 7.1  # the fee reaches the assembled cost
    assert _refunds(alipay_emulator) == 1
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}
    theirs = list(litellm.completion(model=MODEL, messages=[{"role": "user", "content": "get_weather city=HZ"}],
                                     tools=[weather], stream=True, **ling, **_key()))
    [call] = litellm.stream_chunk_builder(theirs).choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    plain = litellm.completion(model=MODEL, messages=_ask(t["out_trade_no"], "2.00"), **ling, **_key())
    assert plain.choices[0].message.provider_specific_fields["actions"][0]["status"] == "SUCCESS"
    assert _refunds(alipay_emulator) == 2


async def test_no_key_no_actions(ling, alipay_emulator, trade):
    """Without allowed_actions the Ling call is a plain call: no payment tools offered."""
    t = trade("88.00")
    plain = {k: v for k, v in ling.items() if k != "allowed_actions"}
    reply = await litellm.acompletion(model=MODEL, messages=_ask(t["out_trade_no"], "8.00"), **plain)
    assert "tools" not in alipay_emulator.ant_ling_received()[-1]
    assert reply.choices[0].message.content and _refunds(alipay_emulator) == 0


async def test_a_key_reused_for_another_request_is_refused(ling, alipay_emulator, trade):
    t = trade("88.00")
    key = _key()
    await litellm.acompletion(model=MODEL, messages=_ask(t["out_trade_no"], "8.00"), **ling, **key)
    with pytest.raises(litellm.BadRequestError, match="already used for a different request"):
        await litellm.acompletion(model=MODEL, messages=_ask(t["out_trade_no"], "9.00"), **ling, **key)
    assert _refunds(alipay_emulator) == 1
