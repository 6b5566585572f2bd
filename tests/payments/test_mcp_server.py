"""``litellm-alipay mcp`` as a real process, driven by the ``mcp`` package's own client over stdio and over
streamable HTTP, against the emulator's trades: tools and annotations, query and refund with Alipay's
field names, one execution per idempotency key, and bad input answered as tool errors naming the field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from litellm_alipay.errors import ConfigurationError
from litellm_alipay.payments.mcp_server import MCP_READY, official_env

_async = pytest.mark.asyncio(loop_scope="session")


def _env(emu, tmp_path, **extra: str) -> dict[str, str]:
    return {**os.environ, **emu.env(), "ALIPAY_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
            "ALIPAY_PAYMENTS_REFUND_CAP_PER_CALL": "50.00", **extra}


@asynccontextmanager
async def _stdio(env: dict[str, str]) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "litellm_alipay.cli", "mcp"], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def _http(env: dict[str, str]) -> AsyncIterator[ClientSession]:
    proc = subprocess.Popen([sys.executable, "-m", "litellm_alipay.cli", "mcp", "--http", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert MCP_READY in line, proc.stderr.read() if proc.poll() is not None else line
        async with streamable_http_client(line.split()[-1]) as streams, ClientSession(streams[0], streams[1]) as s:
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
        assert refund_tool.input_schema["properties"]["refund_amount"]["pattern"]
        assert "out_request_no" not in refund_tool.input_schema["properties"]  # the model never picks it
        assert refund_tool.output_schema["properties"]["result"]["enum"]

        queried = await session.call_tool("query_payment", {"out_trade_no": t["out_trade_no"]})
        assert not queried.is_error
        assert queried.structured_content["trade_status"] == "TRADE_SUCCESS"
        assert queried.structured_content["total_amount"] == "88.00"
        assert "TRADE_SUCCESS" in queried.content[0].text

        args = {"out_trade_no": t["out_trade_no"], "refund_amount": "8.00", "out_request_no": "model-made"}
        meta = {"idempotency_key": "ticket-4711-refund"}
        first = await session.call_tool("refund", args, meta=meta)
        again = await session.call_tool("refund", args, meta=meta)  # the client's retry: same key
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


@_async
async def test_bad_input_is_a_tool_error_naming_the_field(alipay_emulator, trade, tmp_path) -> None:
    t = trade("88.00")
    env = _env(alipay_emulator, tmp_path, ALIPAY_PAYMENTS_ENABLED_ACTIONS="refund")
    async with _stdio(env) as session:
        unknown = await session.call_tool("query_payment", {"out_trade_no": "no-such-order"})
        decimals = await session.call_tool("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "1.005"},
                                           meta={"idempotency_key": "ticket-1-decimals"})
        over_cap = await session.call_tool("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "60.00"},
                                           meta={"idempotency_key": "ticket-1-overcap"})
        disabled = await session.call_tool("close_payment", {"out_trade_no": t["out_trade_no"]})
        no_key = await session.call_tool("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "1.00"})
        still_alive = await session.call_tool("query_payment", {"out_trade_no": t["out_trade_no"]})
    assert unknown.is_error and "out_trade_no" in unknown.content[0].text
    assert unknown.structured_content["sub_code"].endswith("TRADE_NOT_EXIST")
    assert decimals.is_error and decimals.content[0].text.startswith("refund_amount")
    assert over_cap.is_error and "payments.refund_cap_per_call" in over_cap.content[0].text
    assert disabled.is_error and "ALIPAY_PAYMENTS_ENABLED_ACTIONS" in disabled.content[0].text
    assert not no_key.is_error  # the session and request id are the key when the client sends none
    assert not still_alive.is_error
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 1


@_async
async def test_a_server_can_require_the_clients_key(alipay_emulator, trade, tmp_path) -> None:
    t = trade("88.00")
    env = _env(alipay_emulator, tmp_path, ALIPAY_PAYMENTS_ENABLED_ACTIONS="refund",
               ALIPAY_MCP_REQUIRE_IDEMPOTENCY_KEY="true")
    async with _stdio(env) as session:
        refused = await session.call_tool("refund", {"out_trade_no": t["out_trade_no"], "refund_amount": "1.00"})
        query = await session.call_tool("query_payment", {"out_trade_no": t["out_trade_no"]})
    assert refused.is_error and refused.content[0].text.startswith("_meta.idempotency_key")
    assert not query.is_error and alipay_emulator.stats()["trades"]["refunds_executed"] == 0


def test_official_server_settings_are_accepted() -> None:
    env = official_env({"AP_APP_ID": "2021000000000001", "AP_APP_KEY": "k", "AP_PUB_KEY": "p",
                        "AP_CURRENT_ENV": "sandbox", "AP_SELECT_TOOLS": "queryPay,refund-alipay-payment"})
    assert env["ALIPAY_APP_ID"] == "2021000000000001" and env["ALIPAY_SANDBOX"] == "true"
    assert env["ALIPAY_APP_PRIVATE_KEY"] == "k" and env["ALIPAY_PUBLIC_KEY"] == "p"
    assert set(env["ALIPAY_PAYMENTS_ENABLED_ACTIONS"].split(",")) == {"query_payment", "refund"}
    with pytest.raises(ConfigurationError, match="AP_SELECT_TOOLS"):
        official_env({"AP_SELECT_TOOLS": "freezeAccount"})
