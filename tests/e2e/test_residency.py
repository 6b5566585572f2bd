"""Data residency, the hybrid config and the moderation guardrail, against the emulator and the real proxy."""

from __future__ import annotations

import litellm
import openai
import pytest

from litellm_alipay.errors import DataResidencyError
from litellm_alipay.ops import residency
from litellm_alipay.ops.guardrails import card_numbers, violation

from .proxy_process import ROOT, ProxyProcess, openai_client, proxy_env

GUARDED = {"residency_regions": "EU,US-CA"}
ASK = [{"role": "user", "content": "Show my last refund"}]


# ------------------------------------------------------------------------------------------- pure
def test_guard_rules():
    regions = residency.parse_regions(" eu, US-ca ,")
    assert regions == {"EU", "US-CA"}
    with pytest.raises(DataResidencyError, match="region EU .*alipay_consent"):
        residency.check({"user_region": "eu"}, regions)
    residency.check({"user_region": "EU", "alipay_consent": True}, regions)
    residency.check({"user_region": "EU", "alipay_consent": "yes"}, regions)
    with pytest.raises(DataResidencyError):
        residency.check({"user_region": "US-CA", "alipay_consent": "no"}, regions)
    residency.check({"user_region": "CN"}, regions)
    residency.check({}, regions)
    with pytest.raises(DataResidencyError, match="region EU"):
        residency.check({"geo": "EU"}, regions, metadata_key="geo")
    assert residency.request_metadata({"metadata": {"requester_metadata": {"user_region": "EU"}}}) == {
        "user_region": "EU", "requester_metadata": {"user_region": "EU"}}


def test_guardrail_rules():
    assert card_numbers("pay with 4111-1111-1111-1111 now") == ["4111111111111111"]
    assert card_numbers("order 4111111111111112") == []  # fails the Luhn check
    assert violation(["my CVV is 123"], ["cvv"]) == "the prompt contains the denied term 'cvv'"
    assert violation(["refund 100"], ["cvv"]) is None


# ------------------------------------------------------------------------------------- in-process
def test_refused_before_anything_is_sent(deployment, alipay_emulator):
    with pytest.raises(litellm.ContentPolicyViolationError, match="region US-CA.*alipay_consent"):
        litellm.completion(model="alipay/ant-fin-chat", messages=ASK, metadata={"user_region": "us-ca"},
                           **deployment, **GUARDED)
    with pytest.raises(litellm.ContentPolicyViolationError, match="region EU"):
        litellm.embedding(model="alipay/ant-fin-embed", input=["x"], metadata={"user_region": "EU"},
                          **deployment, **GUARDED)
    assert alipay_emulator.stats()["requests_total"] == 0


async def test_consent_or_other_regions_go_through(deployment, alipay_emulator):
    consented = await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, **deployment, **GUARDED,
                                          metadata={"user_region": "EU", "alipay_consent": True})
    elsewhere = await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, **deployment, **GUARDED,
                                          metadata={"user_region": "SG"})
    answers = {reply.choices[0].message.content for reply in (consented, elsewhere)}
    assert answers == {"You said: Show my last refund"}
    assert alipay_emulator.stats()["requests_total"] == 2


async def test_router_falls_back_to_the_regional_model(deployment, alipay_emulator):
    router = litellm.Router(model_list=[
        {"model_name": "payments", "litellm_params": {"model": "alipay/ant-fin-chat", **deployment, **GUARDED}},
        {"model_name": "general-chat", "litellm_params": {
            "model": "openai/general-chat", "api_base": alipay_emulator.base_url + "/v1", "api_key": "unused"}},
    ], content_policy_fallbacks=[{"payments": ["general-chat"]}], num_retries=0)
    reply = await router.acompletion(model="payments", messages=ASK, metadata={"user_region": "EU"})
    assert reply.choices[0].message.content == "You said: Show my last refund"
    stats = alipay_emulator.stats()
    assert stats["requests_total"] == 0 and stats["openai_requests"] == {"chat.completions": 1}


# ----------------------------------------------------------------------------- the hybrid config
@pytest.fixture(scope="module")
def proxy(alipay_emulator_process):
    proc = ProxyProcess(ROOT / "config" / "hybrid.yaml", proxy_env(alipay_emulator_process))
    yield proc
    proc.stop()


@pytest.fixture
def client(proxy, alipay_emulator):
    return openai_client(proxy)


def test_hybrid_payment_task_goes_to_alipay(client, alipay_emulator):
    reply = client.chat.completions.create(model="payments", messages=[
        {"role": "user", "content": "refund 12.50"}], extra_body={"allowed_actions": ["REFUND"]},
        metadata={"user_region": "CN"}, extra_headers={"Idempotency-Key": "hybrid-refund-1"})
    assert reply.choices[0].message.content == "You said: refund 12.50 Actions: REFUND SUCCESS"
    stats = alipay_emulator.stats()
    assert stats["requests_by_method"] == {"alipay.cloud.ai.chat": 1} and stats["openai_requests"] == {}


def test_hybrid_general_chat_stays_regional(client, alipay_emulator):
    reply = client.chat.completions.create(model="general-chat", messages=ASK)
    assert reply.choices[0].message.content == "You said: Show my last refund"
    stats = alipay_emulator.stats()
    assert stats["requests_total"] == 0 and stats["openai_requests"] == {"chat.completions": 1}


def test_hybrid_residency_refusal_falls_back(client, alipay_emulator):
    reply = client.chat.completions.create(model="payments", messages=ASK, metadata={"user_region": "EU"})
    assert reply.choices[0].message.content == "You said: Show my last refund"
    stats = alipay_emulator.stats()
    assert stats["requests_total"] == 0, "an EU request without consent reached Alipay"
    assert stats["openai_requests"] == {"chat.completions": 1}


def test_hybrid_consent_goes_to_alipay(client, alipay_emulator):
    client.chat.completions.create(model="payments", messages=ASK, extra_headers={"Idempotency-Key": "consent-1"},
                                   metadata={"user_region": "EU", "alipay_consent": True})
    stats = alipay_emulator.stats()
    assert stats["requests_total"] == 1 and stats["openai_requests"] == {}


def test_guardrail_blocks_card_numbers_before_any_model(client, alipay_emulator):
    with pytest.raises(openai.BadRequestError, match="alipay-moderation.*card number"):
        client.chat.completions.create(model="payments", messages=[
            {"role": "user", "content": "refund to card 4111 1111 1111 1111"}])
    with pytest.raises(openai.BadRequestError, match="denied term"):
        client.chat.completions.create(model="payments", messages=[
            {"role": "user", "content": "my password is hunter2"}])
    stats = alipay_emulator.stats()
    assert stats["requests_total"] == 0 and stats["openai_requests"] == {}


def test_guardrail_lets_clean_prompts_through_and_guards_only_alipay(client, alipay_emulator):
    assert client.chat.completions.create(model="payments", messages=ASK,
                                          extra_headers={"Idempotency-Key": "clean-1"}).choices[0].message.content
    regional = client.chat.completions.create(model="general-chat", messages=[
        {"role": "user", "content": "what is a CVV"}])  # the regional model is not behind this guardrail
    assert regional.choices[0].message.content == "You said: what is a CVV"
    stats = alipay_emulator.stats()
    assert stats["requests_total"] == 1 and stats["openai_requests"] == {"chat.completions": 1}
