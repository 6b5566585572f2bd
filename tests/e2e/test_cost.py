"""B5/B6 cost as LiteLLM reports it: the real proxy's per-request figure, and the pricing settings in-process.

Expected figures are computed here from the emulator's documented deterministic usage (characters of
the prompt and of the answer) with ``pricing.price_*``, never read back from the provider under test.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import litellm
import pytest
from litellm.integrations.custom_logger import CustomLogger
from redis_server import RedisServer

from litellm_alipay.billing import pricing
from litellm_alipay.billing.pricing import PricingConfig, RedisMonthlyCounter, month_key

from .proxy_process import ROOT, ProxyProcess, openai_client, proxy_env

DEFAULT = PricingConfig()  # the shipped config sets no prices: 0.03 CNY per started 1,000 chars, 7.1 CNY/USD


def chat_usage(prompt: str, answer: str) -> dict[str, int]:
    return {"input_chars": len(prompt), "output_chars": len(answer)}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ledger") / "cost.jsonl"


@pytest.fixture(scope="module")
def proxy(alipay_emulator_process, ledger):
    env = proxy_env(alipay_emulator_process, ALIPAY_COST_LEDGER=str(ledger))
    proc = ProxyProcess(ROOT / "config" / "litellm.yaml", env)
    yield proc
    proc.stop()


@pytest.fixture
def client(proxy, alipay_emulator):
    return openai_client(proxy)


def ledger_entry(ledger: Path, call_id: str, deadline_s: float = 20.0) -> dict:
    """The ledger line of one call; success callbacks run after the response, so poll (bounded)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if ledger.exists():
            for line in ledger.read_text().splitlines():
                entry = json.loads(line)
                if entry["call_id"] == call_id:
                    return entry
        time.sleep(0.05)
    raise AssertionError(f"no ledger entry for {call_id} within {deadline_s} s")


def test_chat_cost_header(client, ledger):
    prompt = "Show my balance " * 160  # 2,560 characters: with the echoed answer, 6 started thousands
    raw = client.chat.completions.with_raw_response.create(
        model="fin-chat", messages=[{"role": "user", "content": prompt}])
    answer = raw.parse().choices[0].message.content
    assert answer == "You said: " + prompt
    expected = pricing.price_chat(chat_usage(prompt, answer), None, DEFAULT)
    assert expected.breakdown["units"] == 6 and expected.cny == pytest.approx(0.18)
    assert float(raw.headers["x-litellm-response-cost"]) == pytest.approx(expected.usd, rel=1e-9)
    entry = ledger_entry(ledger, raw.headers["x-litellm-call-id"])
    assert entry["cost_cny"] == pytest.approx(0.18) and entry["response_cost"] == pytest.approx(expected.usd)


def test_refund_adds_the_action_fee(client, alipay_emulator):
    prompt = "Please refund 250.00 for order 77"
    raw = client.chat.completions.with_raw_response.create(
        model="fin-actions", messages=[{"role": "user", "content": prompt}],
        extra_body={"allowed_actions": ["REFUND"]}, extra_headers={"Idempotency-Key": "cost-refund-77"})
    answer = raw.parse().choices[0].message.content
    assert answer.endswith("Actions: REFUND SUCCESS")
    assert alipay_emulator.stats()["actions_executed"] == {"REFUND": 1}
    action = {"action": "REFUND", "status": "SUCCESS", "amount": "250.00", "currency": "CNY"}
    expected = pricing.price_chat(chat_usage(prompt, answer), [action], DEFAULT)
    assert expected.cny == pytest.approx(0.03 + 1.50)  # one started thousand + 0.6 % of 250.00
    assert float(raw.headers["x-litellm-response-cost"]) == pytest.approx(expected.usd, rel=1e-9)


def test_stream_cost_in_the_spend_record(client, ledger):
    """The proxy sends a stream's headers before its cost exists; LiteLLM's own record of it is what spend
    logs and budgets use, and the ledger callback writes exactly that figure."""
    prompt = " ".join(f"退款单号{i:04d}" for i in range(150))  # 1,349 characters (LiteLLM refuses repeated chunks)
    with client.chat.completions.with_streaming_response.create(
            model="fin-chat", messages=[{"role": "user", "content": prompt}], stream=True) as raw:
        call_id = raw.headers["x-litellm-call-id"]
        answer = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert answer == "You said: " + prompt
    expected = pricing.price_chat(chat_usage(prompt, answer), None, DEFAULT)
    assert expected.breakdown["units"] == 3
    entry = ledger_entry(ledger, call_id)
    assert entry["stream"] is True
    assert entry["response_cost"] == pytest.approx(expected.usd, rel=1e-9)
    assert entry["cost_cny"] == pytest.approx(expected.cny) and entry["cost_breakdown"]["units"] == 3


def test_stream_chunks_carry_no_pricing_internals(client, ledger):
    """Usage and the USD cost on the final chunk, as LiteLLM does it; the CNY breakdown only in the ledger."""
    with client.chat.completions.with_streaming_response.create(
            model="fin-chat", messages=[{"role": "user", "content": "Show my bill"}], stream=True,
            stream_options={"include_usage": True}) as raw:
        call_id = raw.headers["x-litellm-call-id"]
        chunks = list(raw.parse())
    dumped = [c.model_dump_json() for c in chunks]
    assert not [d for d in dumped if "cost_cny" in d or "cost_breakdown" in d or "unit_price" in d]
    assert chunks[-1].usage.total_tokens > 0
    assert ledger_entry(ledger, call_id)["cost_breakdown"]["units"] == 1


def test_embedding_cost_header(client):
    texts = ["付款" * 600, "refund"]  # 1,206 input characters in one gateway request
    raw = client.embeddings.with_raw_response.create(model="fin-embed", input=texts)
    assert len(raw.parse().data) == 2
    expected = pricing.price_embedding({"input_chars": sum(map(len, texts))}, DEFAULT)
    assert expected.breakdown["units"] == 2
    assert float(raw.headers["x-litellm-response-cost"]) == pytest.approx(expected.usd, rel=1e-9)


# ------------------------------------------------------------------------------------- in-process
def test_token_scheme_bills_the_5000_character_minimum(deployment):
    prices = {"pricing_scheme": "token", "price_input_per_million_cny": 20.0,
              "price_output_per_million_cny": 60.0, "cny_per_usd": 7.0}
    prompt = "refund status please"
    reply = litellm.completion(model="alipay/ant-fin-chat", messages=[{"role": "user", "content": prompt}],
                               **deployment, **prices)
    answer = reply.choices[0].message.content
    chars = len(prompt) + len(answer)
    tokens = (reply.usage.prompt_tokens * 20.0 + reply.usage.completion_tokens * 60.0) / 1e6
    expected_cny = tokens * 5000 / chars  # billed as 5,000 characters of the same composition
    alipay = reply._hidden_params["alipay"]
    assert alipay["cost_cny"] == pytest.approx(expected_cny, rel=1e-9)
    assert alipay["cost_breakdown"]["minimum_applied"] is True
    assert reply._hidden_params["response_cost"] == pytest.approx(expected_cny / 7.0, rel=1e-9)


@pytest.fixture(scope="module")
def fresh_redis():
    with RedisServer() as url:
        yield url


async def test_tier_discount_counts_the_month_in_redis_across_models(deployment, fresh_redis, alipay_emulator):
    """Requests 1–2 of the month pay full price, 3+ half; the count is per app and shared through Redis by
    every deployment (two models here) and every worker (a second counter stands for another process)."""
    tiers = {"pricing_tiers": "[[0, 1.0], [2, 0.5]]", "redis_url": fresh_redis}
    ask = [{"role": "user", "content": "hello"}]
    first = await litellm.acompletion(model="alipay/ant-fin-chat", messages=ask, **deployment, **tiers)
    embed = await litellm.aembedding(model="alipay/ant-fin-embed", input=["hi"], **deployment, **tiers)
    other_worker = RedisMonthlyCounter(fresh_redis)
    assert other_worker.count(alipay_emulator.app_id) == 2
    assert other_worker.book(alipay_emulator.app_id) == 3  # another process's request takes position 3
    third = await litellm.acompletion(model="alipay/ant-fin-chat-lite", messages=ask, **deployment, **tiers)
    positions = [r._hidden_params["alipay"]["cost_breakdown"]["month_position"] for r in (first, embed, third)]
    assert positions == [1, 2, 4]
    assert [r._hidden_params["alipay"]["cost_cny"] for r in (first, embed, third)] == pytest.approx(
        [0.03, 0.03, 0.015])
    assert third._hidden_params["response_cost"] == pytest.approx(0.015 / 7.1)
    assert other_worker.count(alipay_emulator.app_id) == 4
    import redis

    with redis.Redis.from_url(fresh_redis) as direct:  # the one key per app and Beijing month
        assert int(direct.get(month_key(alipay_emulator.app_id, other_worker.clock()))) == 4
    other_worker.close()


class _Costs(CustomLogger):
    """What LiteLLM itself recorded for each call: the figure spend logs and budgets use."""

    def __init__(self) -> None:
        super().__init__()
        self.sync: list[float] = []
        self.async_: list[float] = []

    def log_success_event(self, kwargs, response_obj, start_time, end_time) -> None:
        self.sync.append(kwargs["standard_logging_object"]["response_cost"])

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time) -> None:
        self.async_.append(kwargs["standard_logging_object"]["response_cost"])


def _poll(predicate, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "the success callback did not run in time"
        time.sleep(0.02)


def test_streams_report_their_cost_sync_and_async(deployment, monkeypatch):
    costs = _Costs()
    monkeypatch.setattr(litellm, "callbacks", [*litellm.callbacks, costs])
    prompt = "refund 40"
    stream = litellm.completion(model="alipay/ant-fin-chat", messages=[{"role": "user", "content": prompt}],
                                stream=True, allowed_actions=["REFUND"], **deployment)
    chunks = list(stream)
    answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    action = {"action": "REFUND", "status": "SUCCESS", "amount": "40.00", "currency": "CNY"}
    expected = pricing.price_chat(chat_usage(prompt, answer), [action], DEFAULT)
    assert expected.cny == pytest.approx(0.03 + 0.24)
    leaked = [c for c in chunks if "cost_cny" in c.model_dump_json() or "cost_breakdown" in c.model_dump_json()]
    assert leaked == []  # the CNY figure and breakdown stay server-side
    _poll(lambda: costs.sync)
    assert costs.sync == [pytest.approx(expected.usd, rel=1e-9)]

    async def consume() -> str:
        response = await litellm.acompletion(model="alipay/ant-fin-chat", stream=True, **deployment,
                                             messages=[{"role": "user", "content": "hello"}])
        return "".join([c.choices[0].delta.content or "" async for c in response if c.choices])

    answer = asyncio.run(consume())
    _poll(lambda: costs.async_)
    assert costs.async_ == [pytest.approx(pricing.price_chat(chat_usage("hello", answer), None, DEFAULT).usd)]
