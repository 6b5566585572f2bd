"""Canary (Router weights) and shadow (replayed, discarded) deployments from the shipped configs."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import litellm
import openai

from litellm_alipay.ops.shadow import ShadowTraffic, replay_request

from .configs import router_from_config
from .proxy_process import MASTER_KEY, ROOT, ProxyProcess

CALLS = 1000
ASK = [{"role": "user", "content": "Show my last refund"}]


async def test_canary_gets_about_one_percent(alipay_emulator):
    """1,000 calls at weights 99:1. Seeded so the run is repeatable; even unseeded, the bounds fail with
    probability about 4e-5 (no canary call: 0.99^1000) — the test is not flaky."""
    router = router_from_config(ROOT / "config" / "canary.yaml", alipay_emulator.env(), num_retries=0)
    random.seed(20261101)
    replies = []
    for start in range(0, CALLS, 50):  # bounded concurrency: 50 calls in flight
        replies += await asyncio.gather(*(router.acompletion(model="fin-chat", messages=ASK)
                                          for _ in range(start, min(start + 50, CALLS))))
    served = Counter(reply._hidden_params["model_id"] for reply in replies)
    assert set(served) <= {"fin-chat-stable", "fin-chat-canary-v3"} and sum(served.values()) == CALLS
    assert 0 < served["fin-chat-canary-v3"] < 0.05 * CALLS, served
    assert {reply.choices[0].message.content for reply in replies} == {"You said: Show my last refund"}
    assert alipay_emulator.stats()["requests_total"] == CALLS


def test_replay_request_whitelists():
    kwargs = {"call_type": "acompletion", "messages": ASK, "litellm_call_id": "c1",
              "litellm_params": {"metadata": {"model_group": "fin-chat"}},
              "optional_params": {"temperature": 0.2, "allowed_actions": ["REFUND"], "out_request_no": "x",
                                  "app_private_key": "secret", "stream": True}}
    assert replay_request(kwargs, "fin-chat-shadow", frozenset({"fin-chat"})) == {
        "model": "fin-chat-shadow", "messages": ASK, "temperature": 0.2,
        "metadata": {"alipay_shadow": True, "shadow_of": "c1"}}
    assert replay_request(kwargs, "fin-chat-shadow", frozenset({"other"})) is None
    shadowed = {**kwargs, "litellm_params": {"metadata": {"model_group": "fin-chat", "alipay_shadow": True}}}
    assert replay_request(shadowed, "fin-chat-shadow", frozenset({"fin-chat"})) is None


async def wait_for(predicate, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_shadow_is_sent_and_discarded(alipay_emulator, monkeypatch):
    env = alipay_emulator.env()
    router = router_from_config(ROOT / "config" / "shadow.yaml", env)
    shadow = ShadowTraffic("fin-chat-shadow", "fin-chat", router=router)
    monkeypatch.setattr(litellm, "callbacks", [*litellm.callbacks, shadow])
    reply = await router.acompletion(model="fin-chat", messages=[{"role": "user", "content": "refund 100"}],
                                     allowed_actions=["REFUND"])
    assert reply.model == "ant-fin-chat"
    assert reply.choices[0].message.content == "You said: refund 100 Actions: REFUND SUCCESS"
    await wait_for(lambda: shadow.succeeded + shadow.failed >= 1)
    assert (shadow.sent, shadow.succeeded, shadow.failed) == (1, 1, 0)
    stats = alipay_emulator.stats()
    assert stats["requests_by_app"] == {env["ALIPAY_APP_ID"]: 1, env["ALIPAY_CERT_APP_ID"]: 1}
    assert stats["actions_executed"] == {"REFUND": 1} and stats["action_repeats"] == 0  # the shadow ran none


def test_shadow_under_the_proxy(alipay_emulator_process, alipay_emulator):
    env = alipay_emulator_process.env()
    proc = ProxyProcess(ROOT / "config" / "shadow.yaml", {
        **env, "ALIPAY_SHADOW_MODEL": "fin-chat-shadow", "ALIPAY_SHADOW_SOURCES": "fin-chat"})
    try:
        client = openai.OpenAI(base_url=proc.base_url, api_key=MASTER_KEY, max_retries=0, timeout=60)
        reply = client.chat.completions.create(model="fin-chat", messages=ASK)
        assert reply.choices[0].message.content == "You said: Show my last refund"
        cert_app = env["ALIPAY_CERT_APP_ID"]
        deadline = time.monotonic() + 20
        while alipay_emulator.stats()["requests_by_app"].get(cert_app, 0) < 1:
            assert time.monotonic() < deadline, "the shadow call never reached the gateway"
            time.sleep(0.05)
        assert alipay_emulator.stats()["requests_by_app"] == {env["ALIPAY_APP_ID"]: 1, cert_app: 1}
    finally:
        proc.stop()
