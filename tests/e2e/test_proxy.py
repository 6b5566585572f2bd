"""The shipped proxy config, run by the real ``litellm`` proxy, driven by the official OpenAI SDK."""

import json

import openai
import pytest

from .proxy_process import openai_client


@pytest.fixture
def client(proxy, alipay_emulator):
    return openai_client(proxy)


ASK = [{"role": "user", "content": "Show my last refund 显示我的退款"}]
ANSWER = "You said: Show my last refund 显示我的退款"


def test_chat(client):
    reply = client.chat.completions.create(model="fin-chat", messages=ASK)
    assert reply.choices[0].message.content == ANSWER
    assert reply.usage.total_tokens > 0


def test_streaming(client):
    stream = client.chat.completions.create(model="fin-chat", messages=ASK, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == ANSWER


def test_tool_call(client):
    tools = [{"type": "function", "function": {"name": "lookup_trade", "parameters": {
        "type": "object", "properties": {"trade_no": {"type": "string"}}}}}]
    reply = client.chat.completions.create(model="fin-chat", tools=tools, messages=[
        {"role": "user", "content": "lookup_trade trade_no=2024X"}])
    call = reply.choices[0].message.tool_calls[0]
    assert call.function.name == "lookup_trade" and json.loads(call.function.arguments) == {"trade_no": "2024X"}


def test_image_input(client):
    reply = client.chat.completions.create(model="fin-chat", messages=[{"role": "user", "content": [
        {"type": "text", "text": "Read this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}])
    assert reply.choices[0].message.content == "You said: Read this [image 1: image/png, 8 bytes]"


def test_embeddings(client):
    out = client.embeddings.create(model="fin-embed", input=["付款", "refund"])
    assert len(out.data) == 2 and len(out.data[0].embedding) > 0


def test_fallback_on_system_error(client, alipay_emulator):
    alipay_emulator.set_faults([{"kind": "system_error", "next": 2}])  # the first try and its one retry
    reply = client.chat.completions.create(model="fin-chat", messages=ASK)
    assert reply.model == "ant-fin-chat-lite"
    assert reply.choices[0].message.content == ANSWER


def test_content_policy_fallback(client, alipay_emulator):
    reply = client.chat.completions.create(model="fin-chat", messages=[
        {"role": "user", "content": "Please forecast my income"}])
    assert reply.choices[0].message.content == "You said: Please forecast my income"
    assert alipay_emulator.stats()["rejections"].get("AI.COMPLIANCE_REJECTED", 0) >= 1


def test_compliance_refusal_reaches_the_client_typed_without_fallback(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="fin-chat-lite", messages=[
            {"role": "user", "content": "Please forecast my income"}])
    assert "AI.COMPLIANCE_REJECTED" in str(info.value)
