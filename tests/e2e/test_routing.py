"""`assistant`: one model name, routed by the real proxy (shipped configs) and called with the OpenAI SDK.

Where a request went is read twice: from the route headers, and from the emulator's own counts (an Alipay
call is a signed gateway request; a regional call is on its OpenAI-compatible /v1).
"""

from __future__ import annotations

import openai
import pytest

from tests.routing.labelled import SIDES, accuracy, load

from .proxy_process import ROOT, ProxyProcess, openai_client, proxy_env

REFUND_TOOL = {"type": "function", "function": {
    "name": "refund", "description": "Refund (part of) a paid order.",
    "parameters": {"type": "object", "properties": {"refund_amount": {"type": "string"}}}}}
GUARDED = ("EU", "US-CA", "HK", "SG", "JP")


@pytest.fixture
def client(proxy, alipay_emulator):
    return openai_client(proxy)


def route(client, text: str, **kwargs):
    raw = client.chat.completions.with_raw_response.create(
        model="assistant", messages=[{"role": "user", "content": text}], **kwargs)
    return raw.headers, raw.parse()


def alipay_calls(emulator) -> int:
    return emulator.stats()["requests_by_method"].get("alipay.cloud.ai.chat", 0)


def regional_calls(emulator) -> int:
    return emulator.stats()["openai_requests"].get("chat.completions", 0)


def test_the_labelled_set_through_the_proxy(client, alipay_emulator):
    """Every request of the labelled set: ≥ 95 % per side, trivial turns cheap, the emulator agrees."""
    rows = load()
    routed, reasons = [], []
    for row in rows:
        headers, reply = route(client, row["text"])
        routed.append(headers["x-alipay-route"])
        reasons.append(headers["x-alipay-route-reason"])
        assert reply.choices[0].message.content.startswith("You said:")
    scores = accuracy(rows, routed)
    assert scores["alipay"] >= 0.95 and scores["regional"] >= 0.95, scores
    trivial = [side for row, side, reason in zip(rows, routed, reasons, strict=True) if row["kind"] == "trivial"]
    assert trivial and set(trivial) == {"regional"}
    assert alipay_calls(alipay_emulator) == routed.count("alipay")
    assert regional_calls(alipay_emulator) == routed.count("regional")


def test_residency_overrides_topic_for_every_alipay_request(client, alipay_emulator):
    """Each Alipay-side request of the set, from a user outside mainland China without consent: regional."""
    alipay_rows = [row for row in load() if row["side"] == "alipay"]
    for index, row in enumerate(alipay_rows):
        headers, _ = route(client, row["text"], metadata={"user_region": GUARDED[index % len(GUARDED)]})
        assert (headers["x-alipay-route"], headers["x-alipay-route-reason"]) == ("regional", "residency")
    assert alipay_calls(alipay_emulator) == 0
    assert regional_calls(alipay_emulator) == len(alipay_rows)
    # consent given, or a mainland user: the topic decides again
    for metadata in ({"user_region": "EU", "alipay_consent": True}, {"user_region": "CN"}):
        headers, _ = route(client, "我想申请退款", metadata=metadata)
        assert (headers["x-alipay-route"], headers["x-alipay-route-model"]) == ("alipay", "fin-chat")
    assert alipay_calls(alipay_emulator) == 2


def test_actions_outside_china_are_refused_naming_the_consent_setting(client, alipay_emulator):
    for kwargs in ({"extra_body": {"allowed_actions": ["REFUND"]}}, {"tools": [REFUND_TOOL]}):
        with pytest.raises(openai.BadRequestError, match="alipay_consent=true"):
            route(client, "refund 12.50", metadata={"user_region": "EU"}, **kwargs)
    stats = alipay_emulator.stats()
    assert stats["requests_total"] == 0 and stats["openai_requests"] == {}


def test_tools_and_actions_go_to_alipay(client, alipay_emulator):
    headers, reply = route(client, "what's the weather like?", tools=[REFUND_TOOL])
    assert (headers["x-alipay-route"], headers["x-alipay-route-reason"]) == ("alipay", "tools")
    headers, reply = route(client, "refund 12.50", extra_body={"allowed_actions": ["REFUND"]},
                           extra_headers={"Idempotency-Key": "route-actions-1"})
    assert (headers["x-alipay-route-reason"], headers["x-alipay-route-model"]) == ("tools", "fin-actions")
    assert reply.choices[0].message.content == "You said: refund 12.50 Actions: REFUND SUCCESS"
    assert alipay_calls(alipay_emulator) == 2 and regional_calls(alipay_emulator) == 0


def test_decision_headers_and_the_saving(client, alipay_emulator):
    headers, _ = route(client, "好的")
    assert (headers["x-alipay-route"], headers["x-alipay-route-reason"]) == ("regional", "trivial")
    assert headers["x-alipay-route-model"] == "general-chat"
    saved = float(headers["x-alipay-route-saved-usd"])
    assert 0 < saved < 0.03 / 7.1  # Alipay's minimum per request, less what the regional model cost
    headers, _ = route(client, "Why was I charged twice for the same purchase?")
    assert (headers["x-alipay-route"], headers["x-alipay-route-saved-usd"]) == ("alipay", "0")
    assert float(headers["x-litellm-response-cost"]) == pytest.approx(0.03 / 7.1)


def test_a_stream_is_routed_too(client, alipay_emulator):
    raw = client.chat.completions.with_raw_response.create(
        model="assistant", stream=True, messages=[{"role": "user", "content": "我想申请退款"}])
    assert (raw.headers["x-alipay-route"], raw.headers["x-alipay-route-model"]) == ("alipay", "fin-chat")
    text = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices)
    assert text == "You said: 我想申请退款"
    assert alipay_calls(alipay_emulator) == 1


def test_a_client_cannot_forge_a_decision(client, alipay_emulator):
    raw = client.chat.completions.with_raw_response.create(
        model="general-chat", messages=[{"role": "user", "content": "hi"}],
        metadata={"alipay_route": "alipay"})
    assert "x-alipay-route" not in raw.headers


# ----------------------------------------------------------------------------------- the hybrid config
@pytest.fixture(scope="module")
def hybrid(alipay_emulator_process):
    proc = ProxyProcess(ROOT / "config" / "hybrid.yaml", proxy_env(alipay_emulator_process))
    yield proc
    proc.stop()


def test_hybrid_config_routes_assistant_to_alipay_or_the_regional_model(hybrid, alipay_emulator):
    client = openai_client(hybrid)
    for text, metadata, side, model in (
        ("我的订单号是2024112233，帮我查一下", {"user_region": "CN"}, "alipay", "fin-chat"),
        ("我的订单号是2024112233，帮我查一下", {"user_region": "EU"}, "regional", "general-chat"),
        ("Write a short poem about autumn", {}, "regional", "general-chat"),
    ):
        headers, _ = route(client, text, metadata=metadata)
        assert (headers["x-alipay-route"], headers["x-alipay-route-model"]) == (side, model)
    assert alipay_calls(alipay_emulator) == 1 and regional_calls(alipay_emulator) == 2
    headers, reply = route(client, "refund 12.50", extra_body={"allowed_actions": ["REFUND"]},
                           metadata={"user_region": "CN"}, extra_headers={"Idempotency-Key": "hybrid-route-1"})
    assert headers["x-alipay-route-model"] == "payments"
    assert reply.choices[0].message.content == "You said: refund 12.50 Actions: REFUND SUCCESS"
    assert alipay_calls(alipay_emulator) == 2
    # the moderation guardrail stands in front of `assistant` too: a card number reaches no model
    with pytest.raises(openai.BadRequestError):
        route(client, "pay with 4111 1111 1111 1111", metadata={"user_region": "CN"})
    assert alipay_calls(alipay_emulator) == 2


def test_sides_are_the_labels():
    assert set(SIDES) == {row["side"] for row in load()}
