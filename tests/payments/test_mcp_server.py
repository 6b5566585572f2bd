"""``litellm-alipay mcp`` as a real process, driven by the ``mcp`` package's own client over stdio and over
streamable HTTP, against the emulator's trades: tools and annotations, query and refund with Alipay's
field names, money tools refused without the caller's idempotency key, one execution per key (argument or
``_meta``), a key reused for another amount refused, a person's confirmation through elicitation, and bad
input answered as tool errors naming the field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import mcp.types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from litellm_alipay.errors import ConfigurationError
from litellm_alipay.payments.mcp_server import MCP_READY, official_env

_async = pytest.mark.asyncio(loop_scope="session")


def _env(emu, tmp_path, **extra: str) -> dict[str, str]:
    return {**os.environ, **emu.env(), "ALIPAY_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
            "ALIPAY_PAYMENTS_REFUND_CAP_PER_CALL": "50.00", "ALIPAY_PAYMENTS_REFUND_CAP_PER_DAY": "500.00", **extra}


@asynccontextmanager
async def _stdio(env: dict[str, str], **session_kwargs) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "litellm_alipay.cli", "mcp"], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write, **session_kwargs) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def _http(env: dict[str, str], **session_kwargs) -> AsyncIterator[ClientSession]:
    proc = subprocess.Popen([sys.executable, "-m", "litellm_alipay.cli", "mcp", "--http", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert MCP_READY in line, proc.stderr.read() if proc.poll() is not None else line
        async with streamable_http_client(line.split()[-1]) as streams, \
                ClientSession(streams[0], streams[1], **session_kwargs) as s:
            await s.initialize()
            yield s
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


def _audit(tmp_path) -> list[dict]:
    path = tmp_path / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@_async
@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_query_and_refund_through_a_real_mcp_client(alipay_emulator, trade, tmp_path, transport) -> None:
    t = trade("88.00")
    connect = _stdio if transport == "stdio" else _http
    env = _env(alipay_emulator, tmp_path, ALIPAY_PAYMENTS_ENABLED_ACTIONS="refund")
    async with connect(env) as session:
        listed = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(listed) == {"query_payment", "query_refund", "bill_download_url", "mandate_status", "refund"}
        refund_tool, query_tool = listed["refund"], listed["query_payment"]
        assert refund_tool.annotations.destructive_hint and not refund_tool.annotations.read_only_hint
        assert query_tool.annotations.read_only_hint and not query_tool.annotations.destructive_hint
        assert refund_tool.annotations.idempotent_hint  # true: the required key is among the arguments
        assert refund_tool.input_schema["properties"]["refund_amount"]["pattern"]
        assert "out_request_no" not in refund_tool.input_schema["properties"]  # the model never picks it
        assert "idempotency_key" in refund_tool.input_schema["required"]
        assert "idempotency_key" not in query_tool.input_schema["properties"]
        assert refund_tool.output_schema["properties"]["result"]["enum"]

        queried = await session.call_tool("query_payment", {"out_trade_no": t["out_trade_no"]})
        assert not queried.is_error
        assert queried.structured_content["trade_status"] == "TRADE_SUCCESS"
        assert queried.structured_content["total_amount"] == "88.00"
        assert "TRADE_SUCCESS" in queried.content[0].text

        args = {"out_trade_no": t["out_trade_no"], "refund_amount": "8.00", "out_request_no": "model-made",
                "idempotency_key": "ticket-4711-refund"}
        first = await session.call_tool("refund", args)
        again = await session.call_tool("refund", args)  # the client's retry: same key
        other_amount = await session.call_tool("refund", {**args, "refund_amount": "9.00"})
        no_key = [await session.call_tool("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "1.00"})
                  for _ in range(2)]
    assert not first.is_error and first.structured_content["result"] == "succeeded"
    assert first.structured_content["fund_change"] == "Y" and first.structured_content["refund_fee"] == "8.00"
    assert first.structured_content["out_request_no"] != "model-made"
    assert again.structured_content["result"] == "succeeded"
    assert again.structured_content["out_request_no"] == first.structured_content["out_request_no"]
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 1
    assert again.structured_content["replayed"] is True and "replayed" not in first.structured_content
    trail = [r for r in _audit(tmp_path) if r["event"] in ("outcome", "replay")]
    number = first.structured_content["out_request_no"]
    assert [r["event"] for r in trail] == ["outcome", "replay"] and {r["out_request_no"] for r in trail} == {number}
    # the key reused for another amount: refused, naming the key (Stripe's rule), nothing sent
    assert other_amount.is_error and other_amount.content[0].text.startswith("idempotency_key")
    # no key: the same clear tool error on every retry, naming the argument and how to pass it
    assert all(r.is_error for r in no_key) and no_key[0].content[0].text == no_key[1].content[0].text
    assert no_key[0].content[0].text.startswith("idempotency_key: ") and "tool argument" in no_key[0].content[0].text
    assert no_key[0].structured_content["setting"] == "idempotency_key"
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 1


@_async
async def test_bad_input_is_a_tool_error_naming_the_field(alipay_emulator, trade, tmp_path) -> None:
    t = trade("88.00")
    env = _env(alipay_emulator, tmp_path, ALIPAY_PAYMENTS_ENABLED_ACTIONS="refund")
    async with _stdio(env) as session:
        unknown = await session.call_tool("query_payment", {"out_trade_no": "no-such-order"})
        decimals = await session.call_tool("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "1.005",
                                                      "idempotency_key": "ticket-1-decimals"})
        over_cap = await session.call_tool("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "60.00",
                                                      "idempotency_key": "ticket-1-overcap"})
        disabled = await session.call_tool("close_payment", {"out_trade_no": t["out_trade_no"]})
        short_key = await session.call_tool("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "1.00",
                                                       "idempotency_key": "k1"})
        two_keys = await session.call_tool("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "1.00",
                                                      "idempotency_key": "ticket-1-a"},
                                           meta={"idempotency_key": "ticket-1-b"})
        # a direct connection may send the key in _meta instead of the argument
        by_meta = [await session.call_tool("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "1.00"},
                                           meta={"idempotency_key": "ticket-1-meta"}) for _ in range(2)]
        still_alive = await session.call_tool("query_payment", {"out_trade_no": t["out_trade_no"]})
    assert unknown.is_error and "out_trade_no" in unknown.content[0].text
    assert unknown.structured_content["sub_code"].endswith("TRADE_NOT_EXIST")
    assert decimals.is_error and decimals.content[0].text.startswith("refund_amount")
    assert over_cap.is_error and "payments.refund_cap_per_call" in over_cap.content[0].text
    assert disabled.is_error and "ALIPAY_PAYMENTS_ENABLED_ACTIONS" in disabled.content[0].text
    assert short_key.is_error and short_key.content[0].text.startswith("idempotency_key")
    assert two_keys.is_error and "differ" in two_keys.content[0].text
    assert [r.structured_content["result"] for r in by_meta] == ["succeeded", "succeeded"]
    assert by_meta[1].structured_content["replayed"] is True
    assert not still_alive.is_error
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 1


@_async
@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_a_refund_runs_only_when_a_person_accepts_it(alipay_emulator, trade, tmp_path, transport) -> None:
    """``payments.confirm``: the server asks the client to confirm (form elicitation); the refund executes on
    accept only; a decline, and a client that cannot ask a person, are refused with nothing sent."""
    t = trade("88.00")
    asked: list[str] = []

    def person(decision: str, tick: bool = True):
        async def elicitation(context, params) -> types.ElicitResult:
            asked.append(params.message)
            return types.ElicitResult(action=decision, content={"confirm": tick} if decision == "accept" else None)
        return elicitation

    connect = _stdio if transport == "stdio" else _http
    env = _env(alipay_emulator, tmp_path, ALIPAY_PAYMENTS_ENABLED_ACTIONS="refund", ALIPAY_PAYMENTS_CONFIRM="true")
    args = {"out_trade_no": t["out_trade_no"], "refund_amount": "6.00"}
    async with connect(env, elicitation_callback=person("decline")) as session:
        declined = await session.call_tool("refund", {**args, "idempotency_key": "ticket-9-decline"})
    async with connect(env, elicitation_callback=person("accept", tick=False)) as session:
        unticked = await session.call_tool("refund", {**args, "idempotency_key": "ticket-9-unticked"})
    async with connect(env) as session:  # no elicitation capability
        unsupported = await session.call_tool("refund", {**args, "idempotency_key": "ticket-9-none"})
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 0
    async with connect(env, elicitation_callback=person("accept")) as session:
        accepted = await session.call_tool("refund", {**args, "idempotency_key": "ticket-9-accept"})
        retried = await session.call_tool("refund", {**args, "idempotency_key": "ticket-9-accept"})
    for refused in (declined, unticked, unsupported):
        assert refused.is_error and refused.structured_content["result"] == "refused"
        assert refused.content[0].text.startswith("payments.confirm (ALIPAY_PAYMENTS_CONFIRM)")
        assert "Nothing was sent" in refused.content[0].text
    assert "declined" in declined.content[0].text and "elicitation" in unsupported.content[0].text
    assert not accepted.is_error and accepted.structured_content["result"] == "succeeded"
    assert accepted.structured_content["refund_fee"] == "6.00"
    assert retried.structured_content["replayed"] is True  # answered from the ledger: no second question
    assert len(asked) == 3 and "6.00" in asked[-1] and t["out_trade_no"] in asked[-1]
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 1
    answers = [(r.get("result"), r.get("reason")) for r in _audit(tmp_path) if r["event"] == "confirmation"]
    assert answers == [("refused", "declined"), ("refused", "declined"), ("refused", "unsupported"), (None, None)]


@_async
async def test_keys_are_scoped_to_the_servers_caller(alipay_emulator, trade, tmp_path) -> None:
    """Two servers with different ``ALIPAY_MCP_CALLER`` never share an action, whatever key they pick."""
    t = trade("88.00")
    args = {"out_trade_no": t["out_trade_no"], "refund_amount": "2.00", "idempotency_key": "ticket-1"}
    numbers = []
    for caller in ("support-desk", "billing-bot"):
        env = _env(alipay_emulator, tmp_path, ALIPAY_PAYMENTS_ENABLED_ACTIONS="refund", ALIPAY_MCP_CALLER=caller)
        async with _stdio(env) as session:
            numbers.append((await session.call_tool("refund", args)).structured_content["out_request_no"])
    assert numbers[0] != numbers[1] and alipay_emulator.stats()["trades"]["refunds_executed"] == 2


def test_a_server_that_can_refund_needs_a_daily_cap(alipay_emulator, tmp_path) -> None:
    env = _env(alipay_emulator, tmp_path, ALIPAY_PAYMENTS_ENABLED_ACTIONS="refund")
    del env["ALIPAY_PAYMENTS_REFUND_CAP_PER_DAY"]
    done = subprocess.run([sys.executable, "-m", "litellm_alipay.cli", "mcp"], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "ALIPAY_PAYMENTS_REFUND_CAP_PER_DAY" in done.stderr
    bad = subprocess.run([sys.executable, "-m", "litellm_alipay.cli", "mcp"], stdin=subprocess.DEVNULL, text=True,
                         env={**env, "ALIPAY_PAYMENTS_REFUND_CAP_PER_DAY": "9.00", "ALIPAY_MCP_CALLER": "a b"},
                         capture_output=True, timeout=120)
    assert bad.returncode == 2 and "ALIPAY_MCP_CALLER" in bad.stderr


def test_official_server_settings_are_accepted() -> None:
    env = official_env({"AP_APP_ID": "2021000000000001", "AP_APP_KEY": "k", "AP_PUB_KEY": "p",
                        "AP_CURRENT_ENV": "sandbox", "AP_SELECT_TOOLS": "queryPay,refund-alipay-payment"})
    assert env["ALIPAY_APP_ID"] == "2021000000000001" and env["ALIPAY_SANDBOX"] == "true"
    assert env["ALIPAY_APP_PRIVATE_KEY"] == "k" and env["ALIPAY_PUBLIC_KEY"] == "p"
    assert set(env["ALIPAY_PAYMENTS_ENABLED_ACTIONS"].split(",")) == {"query_payment", "refund"}
    with pytest.raises(ConfigurationError, match="AP_SELECT_TOOLS"):
        official_env({"AP_SELECT_TOOLS": "freezeAccount"})


@_async
async def test_without_the_money_ledger_refunds_fail_closed_and_queries_still_answer(alipay_emulator, trade,
                                                                                     tmp_path) -> None:
    t = trade("88.00")
    env = _env(alipay_emulator, tmp_path, ALIPAY_PAYMENTS_ENABLED_ACTIONS="refund",
               ALIPAY_LEDGER_URL="postgresql://nobody@127.0.0.1:1/ledger?connect_timeout=2")
    async with _stdio(env) as session:
        refund = await session.call_tool("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "3.00",
                                                    "idempotency_key": "ticket-ledger-down"})
        query = await session.call_tool("query_payment", {"out_trade_no": t["out_trade_no"]})
    assert refund.is_error and refund.content[0].text.startswith("LedgerUnavailableError")
    assert "retry with the same key" in refund.content[0].text
    assert not query.is_error and query.structured_content["trade_status"] == "TRADE_SUCCESS"
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 0


def test_only_the_mcp_tools_take_the_key(settings) -> None:
    """The OpenAI-format tools offered to models inside ``alipay/`` calls never take a key: there it is the
    request's. Over MCP the refund requires it, and nothing else declares it."""
    from litellm_alipay.payments import PaymentPolicy, PaymentToolkit
    from litellm_alipay.payments.mcp_server import KEYED, annotations, tools_schema
    from litellm_alipay.payments.tools import SPECS, PaymentTools

    offered = PaymentTools(PaymentToolkit(settings, PaymentPolicy.from_mapping({"enabled_actions": list(SPECS)})))
    assert all("idempotency_key" not in d["function"]["parameters"]["properties"] for d in offered.definitions())
    assert {name for name in SPECS if "idempotency_key" in tools_schema(name)["required"]} == set(KEYED) == {
        "refund", "cancel_payment", "propose_mandate", "pay_under_mandate"}
    assert {name for name in SPECS if annotations(name)["destructive_hint"]} == {
        "refund", "cancel_payment", "close_payment", "pay_under_mandate", "cancel_mandate"}
