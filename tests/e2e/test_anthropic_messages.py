"""The Anthropic SDK on the proxy's ``/v1/messages``: a streamed tool call ends with the tool call only.

A real Anthropic model reached by a later fallback refuses history with an empty text block, so the
stream must end ``[tool_use]``, not ``[tool_use, text("")]``. Text streams keep one text block.
"""

from __future__ import annotations

import anthropic
import pytest

from .proxy_process import MASTER_KEY

TOOLS = [{"name": "lookup_trade", "description": "Find a trade by its number",
          "input_schema": {"type": "object", "properties": {"trade_no": {"type": "string"}}}}]


@pytest.fixture
def client(proxy, alipay_emulator):
    return anthropic.Anthropic(base_url=proxy.base_url, api_key=MASTER_KEY, max_retries=0, timeout=60)


def test_streamed_tool_call_has_no_trailing_text_block(client):
    with client.messages.stream(model="fin-chat", max_tokens=200, tools=TOOLS, messages=[
            {"role": "user", "content": "lookup_trade trade_no=2024X"}]) as stream:
        starts = [e.content_block.type for e in stream if e.type == "content_block_start"]
        message = stream.get_final_message()
    assert starts == ["tool_use"]
    assert [block.type for block in message.content] == ["tool_use"]
    assert message.content[0].name == "lookup_trade" and message.content[0].input == {"trade_no": "2024X"}
    assert message.stop_reason == "tool_use" and message.usage.output_tokens > 0


def test_streamed_text_is_one_text_block(client):
    with client.messages.stream(model="fin-chat", max_tokens=200, messages=[
            {"role": "user", "content": "Show my last refund"}]) as stream:
        message = stream.get_final_message()
    assert [(block.type, block.text) for block in message.content] == [("text", "You said: Show my last refund")]
    assert message.stop_reason == "end_turn"


def test_tool_call_history_goes_back_in(client):
    """The answer's content goes back as history unchanged, with the tool's result: the next turn works."""
    with client.messages.stream(model="fin-chat", max_tokens=200, tools=TOOLS, messages=[
            {"role": "user", "content": "lookup_trade trade_no=2024X"}]) as stream:
        first = stream.get_final_message()
    reply = client.messages.create(model="fin-chat", max_tokens=200, tools=TOOLS, messages=[
        {"role": "user", "content": "lookup_trade trade_no=2024X"},
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": first.content[0].id,
                                      "content": "trade 2024X: paid"}]}])
    assert [block.type for block in reply.content] == ["text"]
    assert reply.content[0].text == "Tool result: trade 2024X: paid"
