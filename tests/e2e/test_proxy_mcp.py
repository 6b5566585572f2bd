"""The shipped ``config/litellm-mcp.yaml`` in a real ``litellm`` proxy: its MCP gateway starts ``litellm-alipay
mcp`` over stdio; a real MCP client lists and calls the payment tools at the proxy's ``/mcp``; and models
served by the proxy (Ant Ling and the Alipay gateway model, both the emulator's deterministic model) call a
payment tool through the Responses API's MCP tool."""

from __future__ import annotations

import json
import queue
import uuid

import httpx
import openai
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from .proxy_process import MASTER_KEY, ROOT, ProxyProcess, openai_client, proxy_env

PREFIX = "alipay_payments-"


@pytest.fixture(scope="module")
def audit_path(tmp_path_factory):
    return tmp_path_factory.mktemp("mcp") / "audit.jsonl"


@pytest.fixture(scope="module")
def proxy(alipay_emulator_process, audit_path):
    env = proxy_env(alipay_emulator_process, LITELLM_ENABLE_MCP_STDIO="true", ALIPAY_AUDIT_LOG=str(audit_path))
    proc = ProxyProcess(ROOT / "config" / "litellm-mcp.yaml", env)
    try:
        _until_listening(proc)
        yield proc
    finally:
        proc.stop()


def _until_listening(proc: ProxyProcess) -> None:
    """"Application startup complete" comes before the socket listens; Uvicorn says when it does."""
    if any("Uvicorn running on" in line for line in proc.output):
        return
    for _ in range(2000):  # bounded: the proxy's own lines, not time
        try:
            line = proc._lines.get(timeout=60)
        except queue.Empty:
            break
        if line is None or "Uvicorn running on" in line:
            return


def _trade(emu) -> dict:
    return emu.create_trade(f"mcp-{uuid.uuid4().hex[:12]}", "88.00")


async def test_a_real_mcp_client_lists_and_calls_the_payment_tools_through_the_proxy(proxy, alipay_emulator,
                                                                                      audit_path):
    t = _trade(alipay_emulator)
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=60)
    async with http, streamable_http_client(proxy.base_url + "/mcp", http_client=http) as streams, \
            ClientSession(streams[0], streams[1]) as session:
        await session.initialize()
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        query = await session.call_tool(PREFIX + "query_payment", {"out_trade_no": t["out_trade_no"]})
        refund = await session.call_tool(PREFIX + "refund", {"out_trade_no": t["out_trade_no"],
                                                             "refund_amount": "8.00"})
        over_cap = await session.call_tool(PREFIX + "refund", {"out_trade_no": t["out_trade_no"],
                                                               "refund_amount": "150.00"})
    assert set(tools) == {PREFIX + n for n in ("query_payment", "query_refund", "bill_download_url", "mandate_status",
                                               "refund")}
    assert tools[PREFIX + "refund"].annotations.destructive_hint is True
    assert query.structured_content["trade_status"] == "TRADE_SUCCESS"
    assert query.structured_content["total_amount"] == "88.00"
    assert refund.structured_content["result"] == "succeeded" and refund.structured_content["fund_change"] == "Y"
    assert over_cap.is_error and "payments.refund_cap_per_call" in over_cap.content[0].text
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 1
    events = [json.loads(line)["event"] for line in audit_path.read_text().splitlines()]
    assert events == ["attempt", "outcome", "refused"]


@pytest.mark.parametrize("model", ["ling-flash", "fin-chat"])
def test_a_model_served_by_the_proxy_calls_a_payment_tool(proxy, alipay_emulator, model):
    t = _trade(alipay_emulator)
    response = openai_client(proxy).responses.create(
        model=model, input=f"{PREFIX}query_payment out_trade_no={t['out_trade_no']}",
        tools=[{"type": "mcp", "server_label": "litellm", "server_url": "litellm_proxy",
                "require_approval": "never"}])
    text = response.output_text
    assert text.startswith("Tool result: alipay.trade.query: result=succeeded, trade_status=TRADE_SUCCESS")
    assert "total_amount=88.00" in text


def test_refunds_inside_a_proxy_call_need_the_idempotency_key_and_run_once(proxy, alipay_emulator):
    t = _trade(alipay_emulator)
    client = openai_client(proxy)
    ask = [{"role": "user", "content": f"refund out_trade_no={t['out_trade_no']} refund_amount=5.00"}]
    with pytest.raises(openai.BadRequestError, match="Idempotency-Key"):
        client.chat.completions.create(model="ling-refunds", messages=ask)
    key = {"Idempotency-Key": f"order-{t['out_trade_no']}-refund-1"}
    first = client.chat.completions.create(model="ling-refunds", messages=ask, extra_headers=key)
    retry = client.chat.completions.create(model="ling-refunds", messages=ask, extra_headers=key)
    assert first.choices[0].message.content.startswith("Tool result:")
    assert '"fund_change": "Y"' in first.choices[0].message.content
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 1
    assert "already succeeded" in retry.choices[0].message.content
