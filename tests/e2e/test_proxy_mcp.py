"""The shipped ``config/litellm-mcp.yaml`` in a real ``litellm`` proxy: its MCP gateway reaches a long-running
``litellm-alipay mcp --http`` (refunds enabled with confirmation and caps, as the config's comment says); a real
MCP client lists and calls the payment tools at the proxy's ``/mcp`` — the refund's idempotency key travels as
a tool argument (LiteLLM drops ``_meta``), the same key twice refunds once, a person confirms through
elicitation relayed by the gateway; and models served by the proxy (Ant Ling and the Alipay gateway model,
both the emulator's deterministic model) call a payment tool through the Responses API's MCP tool."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
import mcp.types as types
import openai
import pytest
import yaml
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from litellm_alipay.payments.mcp_server import MCP_READY

from .proxy_process import MASTER_KEY, ROOT, ProxyProcess, openai_client, proxy_env

PREFIX = "alipay_payments-"


_MONEY = {"ALIPAY_PAYMENTS_ENABLED_ACTIONS": "refund", "ALIPAY_PAYMENTS_REFUND_CAP_PER_CALL": "100.00",
          "ALIPAY_PAYMENTS_REFUND_CAP_PER_DAY": "1000.00", "ALIPAY_MCP_CALLER": "litellm-proxy"}


@pytest.fixture(scope="module")
def audit_path(tmp_path_factory):
    return tmp_path_factory.mktemp("mcp") / "audit.jsonl"


@contextmanager
def _mcp_http_server(env: dict[str, str]) -> Iterator[str]:
    """A long-running ``litellm-alipay mcp --http`` (as the config's comment starts it); its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "litellm_alipay.cli", "mcp", "--http", "--port", "0"],
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert MCP_READY in line, proc.stderr.read() if proc.poll() is not None else line
        yield line.split()[-1]
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


@pytest.fixture(scope="module")
def proxy(alipay_emulator_process, audit_path, tmp_path_factory):
    """The shipped config, plus a second entry for a server whose refunds need a person's confirmation."""
    app = {**alipay_emulator_process.env(), "ALIPAY_AUDIT_LOG": str(audit_path)}
    shipped = yaml.safe_load((ROOT / "config" / "litellm-mcp.yaml").read_text())
    servers = shipped["mcp_servers"]
    servers["alipay_confirmed"] = {**servers["alipay_payments"], "url": "os.environ/ALIPAY_MCP_CONFIRM_URL"}
    config = tmp_path_factory.mktemp("proxy") / "litellm-mcp.yaml"
    config.write_text(yaml.safe_dump(shipped))
    with _mcp_http_server({**app, **_MONEY}) as url, \
            _mcp_http_server({**app, **_MONEY, "ALIPAY_PAYMENTS_CONFIRM": "true"}) as confirm_url:
        proc = ProxyProcess(config, proxy_env(alipay_emulator_process, ALIPAY_MCP_URL=url,
                                              ALIPAY_MCP_CONFIRM_URL=confirm_url))
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


def _person(decision: str, asked: list[str]):
    async def elicitation(context, params) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action=decision, content={"confirm": True} if decision == "accept" else None)
    return elicitation


@asynccontextmanager
async def _gateway(proxy: ProxyProcess, **session_kwargs):
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=60)
    async with http, streamable_http_client(proxy.base_url + "/mcp", http_client=http) as streams, \
            ClientSession(streams[0], streams[1], **session_kwargs) as session:
        await session.initialize()
        yield session


async def test_a_real_mcp_client_calls_the_payment_tools_through_the_proxy(proxy, alipay_emulator, audit_path):
    t = _trade(alipay_emulator)
    key = f"ticket-{t['out_trade_no']}"
    refund = {"out_trade_no": t["out_trade_no"], "refund_amount": "8.00", "idempotency_key": key}
    async with _gateway(proxy) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        query = await session.call_tool(PREFIX + "query_payment", {"out_trade_no": t["out_trade_no"]})
        no_key = await session.call_tool(PREFIX + "refund", {"out_trade_no": t["out_trade_no"],
                                                             "refund_amount": "8.00"})
        first = await session.call_tool(PREFIX + "refund", refund)
        again = await session.call_tool(PREFIX + "refund", refund)  # the client's retry through the gateway
        other_amount = await session.call_tool(PREFIX + "refund", {**refund, "refund_amount": "7.00"})
        over_cap = await session.call_tool(PREFIX + "refund", {"out_trade_no": t["out_trade_no"],
                                                               "refund_amount": "150.00", "idempotency_key": key + "b"})
    assert {n for n in tools if n.startswith(PREFIX)} == {
        PREFIX + n for n in ("query_payment", "query_refund", "bill_download_url", "mandate_status", "refund")}
    assert tools[PREFIX + "refund"].annotations.destructive_hint is True
    assert "idempotency_key" in tools[PREFIX + "refund"].input_schema["required"]
    assert query.structured_content["trade_status"] == "TRADE_SUCCESS"
    assert query.structured_content["total_amount"] == "88.00"
    assert no_key.is_error and no_key.content[0].text.startswith("idempotency_key: ")
    assert first.structured_content["result"] == "succeeded" and first.structured_content["fund_change"] == "Y"
    assert again.structured_content["replayed"] is True
    assert again.structured_content["out_request_no"] == first.structured_content["out_request_no"]
    assert other_amount.is_error and other_amount.content[0].text.startswith("idempotency_key")
    assert over_cap.is_error and "payments.refund_cap_per_call" in over_cap.content[0].text
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 1
    events = [json.loads(line) for line in audit_path.read_text().splitlines()]
    mine = [e["event"] for e in events if e.get("out_trade_no") == t["out_trade_no"] and e["event"] != "refused"]
    assert mine == ["attempt", "outcome", "replay"]


async def test_through_the_gateway_a_confirmed_refund_moves_money_only_after_a_persons_accept(proxy,
                                                                                             alipay_emulator):
    """A server with ``payments.confirm`` behind the gateway (``allow_elicitation: true``): money moves only
    when the person behind the MCP client accepted. LiteLLM 1.108.7 with mcp 2.3.0 serves every gateway call
    statelessly (the session its ``initialize`` opened is not found on the next request), so it answers the
    relayed question with "Downstream client has not advertised elicitation support" and the server refuses:
    nothing is asked, nothing moves. A gateway that relays it asks once and refunds once."""
    t = _trade(alipay_emulator)
    refund = {"out_trade_no": t["out_trade_no"], "refund_amount": "5.00"}
    asked_decline: list[str] = []
    async with _gateway(proxy, elicitation_callback=_person("decline", asked_decline)) as session:
        declined = await session.call_tool("alipay_confirmed-refund", {**refund, "idempotency_key": "ticket-d-1"})
    assert declined.is_error and "payments.confirm" in declined.content[0].text
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 0
    asked: list[str] = []
    async with _gateway(proxy, elicitation_callback=_person("accept", asked)) as session:
        accepted = await session.call_tool("alipay_confirmed-refund", {**refund, "idempotency_key": "ticket-a-1"})
    executed = alipay_emulator.stats()["trades"]["refunds_executed"]
    assert executed == len(asked) <= 1
    if not asked:  # not relayed: refused, naming the setting and why
        assert accepted.is_error and "elicitation" in accepted.content[0].text
    else:
        assert accepted.structured_content["result"] == "succeeded"


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
    # answered from the money ledger: the first answer again, its action marked, nothing sent, no model asked
    assert retry.choices[0].message.content == first.choices[0].message.content
    [action] = retry.choices[0].message.model_extra["provider_specific_fields"]["actions"]
    assert action["status"] == "SUCCESS" and action["replayed"] is True
