"""The mandate tools on the other doors: a real MCP client over stdio (``litellm-alipay mcp``) and the
in-call action loop of an ``alipay/`` Ant Ling deployment — propose, the stand-in user approves, pay, and a
payment over what remains refused before it is sent."""

from __future__ import annotations

import litellm

import litellm_alipay
from litellm_alipay.payments.agent import delegation_wire as dw

from .test_mcp_server import _audit, _env, _stdio


def _pays(emu) -> int:
    return emu.stats()["requests_by_method"].get(dw.PAY, 0)


async def test_mandate_tools_through_a_real_mcp_client(alipay_emulator, tmp_path) -> None:
    env = _env(alipay_emulator, tmp_path, ALIPAY_PAYMENTS_ENABLED_ACTIONS="propose_mandate,pay_under_mandate")
    async with _stdio(env) as session:
        listed = {tool.name for tool in (await session.list_tools()).tools}
        assert {"propose_mandate", "mandate_status", "pay_under_mandate"} <= listed
        assert "cancel_mandate" not in listed
        proposed = await session.call_tool("propose_mandate", {"delegation_desc": "concert tickets",
                                                               "max_total_amount": "30", "valid_days": 3},
                                           meta={"idempotency_key": "mcp-mandate-0001"})
        mandate = proposed.structured_content
        assert not proposed.is_error and mandate["result"] == "needs_confirmation" and mandate["status"] == "SIGNING"
        alipay_emulator.approve_delegation(mandate["order_str"])
        status = await session.call_tool("mandate_status", {"mandate_id": mandate["mandate_id"]})
        assert status.structured_content["status"] == "NORMAL"
        paid = await session.call_tool("pay_under_mandate", {"mandate_id": mandate["mandate_id"],
                                                             "total_amount": "25", "subject": "row 7"},
                                       meta={"idempotency_key": "mcp-mandate-buy-1"})
        assert paid.structured_content["result"] == "succeeded" and paid.structured_content["trade_no"]
        over = await session.call_tool("pay_under_mandate", {"mandate_id": mandate["mandate_id"],
                                                             "total_amount": "6", "subject": "row 8"},
                                       meta={"idempotency_key": "mcp-mandate-buy-2"})
        assert over.is_error and over.structured_content["setting"] == "mandate.remaining_amount"
    assert _pays(alipay_emulator) == 1
    events = {(r["event"], r.get("action")) for r in _audit(tmp_path)}
    assert {("proposal", "propose_mandate"), ("outcome", "pay_under_mandate"),
            ("refused", "pay_under_mandate")} <= events


async def test_mandate_tools_in_the_action_loop(alipay_emulator, monkeypatch) -> None:
    litellm_alipay.register()
    for name, value in alipay_emulator.env().items():
        monkeypatch.setenv(name, value)
    agent = {"model": "alipay/Ling-2.6-flash", "api_base": alipay_emulator.ant_ling_base,
             "api_key": alipay_emulator.ant_ling_api_key, "allowed_actions": ["propose_mandate", "pay_under_mandate"]}

    async def ask(text: str, key: str) -> dict:
        reply = await litellm.acompletion(messages=[{"role": "user", "content": text}],
                                          **{**agent, "metadata": {"idempotency_key": key}})
        [action] = reply.choices[0].message.provider_specific_fields["actions"]
        return action

    asked = await ask("propose_mandate delegation_desc=groceries max_total_amount=20 valid_days=2", "loop-mandate-1")
    assert asked["status"] == "PENDING_CONFIRMATION" and asked["amount"] == "20" and asked["order_str"]
    alipay_emulator.approve_delegation(asked["order_str"])
    bought = await ask(f"pay_under_mandate mandate_id={asked['mandate_id']} total_amount=15.00 subject=basket",
                       "loop-mandate-buy-1")
    assert bought["status"] == "SUCCESS" and bought["trade_no"] and bought["amount"] == "15.00"
    refused = await ask(f"pay_under_mandate mandate_id={asked['mandate_id']} total_amount=6.00 subject=more",
                        "loop-mandate-buy-2")
    assert refused["status"] == "FAILED" and refused["error_code"] == "mandate.remaining_amount"
    assert _pays(alipay_emulator) == 1
