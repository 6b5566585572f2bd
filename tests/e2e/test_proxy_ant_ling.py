"""Ant's models through the real ``litellm`` proxy running the shipped config, driven by the official OpenAI
SDK (chat, stream, tools, Responses API) and the Anthropic SDK (``/v1/messages`` thinking blocks); model
info and health as the proxy reports them."""

import json

import anthropic
import httpx
import pytest

from .proxy_process import MASTER_KEY, openai_client

ASK = [{"role": "user", "content": "hello there"}]
HEADERS = {"Authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture
def client(proxy, alipay_emulator):
    return openai_client(proxy)


@pytest.fixture
def claude(proxy, alipay_emulator):
    return anthropic.Anthropic(base_url=proxy.base_url, api_key=MASTER_KEY, max_retries=0, timeout=60)


def test_ring_reasoning_reaches_the_openai_sdk(client, alipay_emulator):
    reply = client.chat.completions.create(model="ring", messages=ASK, reasoning_effort="medium")
    assert reply.choices[0].message.content == "You said: hello there"
    assert reply.choices[0].message.model_extra["reasoning_content"] == "Reasoning (high): hello there"
    assert reply.usage.completion_tokens_details.reasoning_tokens > 0
    assert alipay_emulator.ant_ling_received()[-1]["reasoning"] == {"effort": "high"}


def test_streamed_reasoning_deltas(client):
    stream = client.chat.completions.create(model="ring", messages=ASK, stream=True)
    chunks = [c for c in stream if c.choices]
    reasoning = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for c in chunks)
    assert reasoning == "Reasoning (high): hello there"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "You said: hello there"


def test_ling_tool_call(client):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    reply = client.chat.completions.create(model="ling-flash", tools=tools,
                                           messages=[{"role": "user", "content": "get_weather city=Hangzhou"}])
    call = reply.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Hangzhou"}


def test_responses_api_has_a_reasoning_item(client):
    response = client.responses.create(model="ring", input="hello there", reasoning={"effort": "high"})
    kinds = [item.type for item in response.output]
    assert kinds == ["reasoning", "message"]
    assert response.output[0].content[0].text == "Reasoning (high): hello there"
    assert response.output_text == "You said: hello there"


def test_anthropic_messages_get_thinking_blocks(claude):
    message = claude.messages.create(model="ring", max_tokens=512, messages=ASK,
                                     thinking={"type": "enabled", "budget_tokens": 1024})
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Reasoning (high): hello there"
    assert message.content[1].text == "You said: hello there"
    with claude.messages.stream(model="ring", max_tokens=512, messages=ASK,
                                thinking={"type": "enabled", "budget_tokens": 1024}) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "Reasoning (high): hello there"


def test_gateway_failure_falls_back_to_ling(client, alipay_emulator):
    alipay_emulator.set_faults([{"kind": "system_error", "methods": ["alipay.cloud.ai.chat"]}])
    # its own tenant: the failures open that tenant's breaker only, not the app's other callers'
    reply = client.chat.completions.create(model="fin-chat", messages=ASK, user="fallback-tenant")
    assert reply.model == "Ling-2.6-flash" and reply.choices[0].message.content == "You said: hello there"


def test_model_info_and_health(proxy, alipay_emulator):
    info = {d["model_name"]: d["model_info"] for d in
            httpx.get(proxy.base_url + "/model/info", headers=HEADERS, timeout=30).json()["data"]}
    assert info["ring"]["max_input_tokens"] == 262_144 and info["ring"]["supports_reasoning"] is True
    assert info["ring"]["input_cost_per_token"] == pytest.approx(0.30e-6)
    assert info["ling-flash"]["supports_function_calling"] is True
    assert info["fin-embed"]["mode"] == "embedding"
    health = httpx.get(proxy.base_url + "/health", headers=HEADERS, timeout=120).json()
    assert health["unhealthy_count"] == 0
    healthy = {e["model"] for e in health["healthy_endpoints"]}
    assert {"alipay/ant-fin-embed", "alipay/Ring-2.6-1T", "alipay/Ling-2.6-flash"} <= healthy
