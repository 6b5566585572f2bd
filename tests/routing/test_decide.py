"""The routing policy, pure: residency before tools before trivial turns before topic."""

from __future__ import annotations

import pytest

from litellm_alipay.billing.pricing import PricingConfig
from litellm_alipay.errors import ConfigurationError
from litellm_alipay.routing import RouteSettings, classify, decide, is_trivial
from litellm_alipay.routing.decide import refusal_message
from litellm_alipay.routing.savings import alipay_price_usd, saved_usd

from .labelled import SIDES, accuracy, load

SETTINGS = RouteSettings()
REFUND_TOOL = {"type": "function", "function": {"name": "refund", "description": "Refund (part of) a paid order.",
                                                "parameters": {"type": "object", "properties": {}}}}
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Today's weather in a city",
                                                 "parameters": {"type": "object", "properties": {}}}}


def ask(text: str, **extra):
    return {"model": "assistant", "messages": [{"role": "user", "content": text}], **extra}


def test_the_labelled_set_is_big_bilingual_and_two_sided():
    rows = load()
    assert len(rows) >= 300
    assert {row["side"] for row in rows} == set(SIDES)
    assert {row["lang"] for row in rows} == {"en", "zh-Hans", "zh-Hant"}
    assert {row["kind"] for row in rows} == {"topic", "tricky", "trivial"}
    assert len({row["text"] for row in rows}) == len(rows)


def test_labelled_set_accuracy_per_side_in_process():
    rows = load()
    routed = [decide(ask(row["text"]), SETTINGS).side for row in rows]
    scores = accuracy(rows, routed)
    assert scores["alipay"] >= 0.95 and scores["regional"] >= 0.95, scores


def test_residency_decides_before_topic_and_names_the_region():
    for region in ("EU", "us-ca", "HK", "SG"):
        decision = decide(ask("I want a refund for order 2024112233", metadata={"user_region": region}), SETTINGS)
        assert (decision.side, decision.reason, decision.model) == ("regional", "residency", "general-chat")
        assert region.upper() in decision.detail
    # consent, home region, or no region: the topic decides
    for metadata in ({"user_region": "EU", "alipay_consent": True}, {"user_region": "cn"}, {}):
        decision = decide(ask("我想申请退款", metadata=metadata), SETTINGS)
        assert (decision.side, decision.reason, decision.model) == ("alipay", "topic", "fin-chat")
    # the proxy nests a client's metadata under requester_metadata on newer releases
    nested = ask("退款", metadata={"requester_metadata": {"user_region": "EU"}})
    assert decide(nested, SETTINGS).reason == "residency"
    # the keys are the deployment's residency settings
    custom = RouteSettings(residency_metadata_key="geo", residency_consent_key="ok_cn")
    assert decide(ask("退款", metadata={"geo": "EU"}), custom).reason == "residency"
    assert decide(ask("退款", metadata={"geo": "EU", "ok_cn": "yes"}), custom).side == "alipay"


def test_actions_outside_china_without_consent_are_refused_naming_the_setting():
    for extra in ({"allowed_actions": ["REFUND"]}, {"extra_body": {"allowed_actions": ["REFUND"]}},
                  {"tools": [REFUND_TOOL]}):
        decision = decide(ask("refund 12.50", metadata={"user_region": "EU"}, **extra), SETTINGS)
        assert (decision.side, decision.reason, decision.model) == ("refused", "residency", None)
        assert "alipay_consent=true" in refusal_message(decision, SETTINGS)
    moved = ask("refund 12.50", metadata={"user_region": "EU", "alipay_allowed_actions": ["REFUND"]})
    assert decide(moved, SETTINGS).side == "refused"  # where the trust hook puts a client's narrowing


def test_tools_and_actions_go_to_alipay_whatever_the_text():
    decision = decide(ask("what's the weather?", tools=[REFUND_TOOL]), SETTINGS)
    assert (decision.side, decision.reason, decision.model) == ("alipay", "tools", "fin-chat")
    assert "refund" in decision.detail
    decision = decide(ask("yes", allowed_actions=["REFUND"]), SETTINGS)
    assert (decision.side, decision.reason, decision.model) == ("alipay", "tools", "fin-actions")
    camel = {**REFUND_TOOL, "function": {"name": "createPayment", "description": ""}}
    assert decide(ask("hello there", tools=[camel]), SETTINGS).reason == "tools"
    # a tool that is not about payments does not pull a general question to Alipay
    decision = decide(ask("what's the weather in Hangzhou?", tools=[WEATHER_TOOL]), SETTINGS)
    assert (decision.side, decision.reason) == ("regional", "topic")


def test_trivial_turns_go_to_the_cheap_side():
    for text in ("好的", "yes", "thanks", "Thank you!", "好的，谢谢！", "謝謝", "ok cool", ""):
        assert is_trivial(text), text
        decision = decide(ask(text), SETTINGS)
        assert (decision.side, decision.reason) == ("regional", "trivial"), text
    for text in ("yes, refund it", "好的退款吧", "thanks, where is my order?"):
        assert not is_trivial(text), text


def test_a_follow_up_without_cues_takes_the_earlier_turn_topic():
    messages = [{"role": "user", "content": "I asked for a refund of my order yesterday"},
                {"role": "assistant", "content": "It is being processed."},
                {"role": "user", "content": "How long will it take?"}]
    decision = decide({"model": "assistant", "messages": messages}, SETTINGS)
    assert (decision.side, decision.reason) == ("alipay", "topic") and "turn -1" in decision.detail
    no_context = RouteSettings(context_turns=0)
    assert decide({"model": "assistant", "messages": messages}, no_context).side == "regional"


def test_cues_carry_no_digits():
    decision = decide(ask("What's the status of order 88812?"), SETTINGS)
    assert decision.side == "alipay" and "order #####" in decision.detail and "88812" not in decision.detail


def test_tricky_cases_explained_by_their_cues():
    assert not classify("Pay attention to the details").alipay
    assert classify("How do I dispute a charge on my PayPal account?").other_institution is not False
    topic = classify("我的支付宝余额怎么提现？")
    assert topic.alipay and "支付宝" in topic.cues
    assert classify("支付寶帳戶被凍結了").alipay  # traditional characters


def test_operator_terms_decide_alone():
    shop = RouteSettings.from_env({"ALIPAY_ROUTE_EXTRA_TERMS": "MoonCake Club, 月饼会员"})
    assert shop.extra_terms == ("MoonCake Club", "月饼会员")
    assert decide(ask("How do I join the MoonCake club?"), SETTINGS).side == "regional"
    decision = decide(ask("How do I join the MoonCake club?"), shop)
    assert (decision.side, decision.reason) == ("alipay", "topic") and "mooncake club" in decision.detail
    assert decide(ask("月饼会员怎么开通"), shop).side == "alipay"
    with pytest.raises(ConfigurationError, match="extra_terms"):
        RouteSettings(extra_terms=("x" * 65,))


def test_settings_are_validated_naming_the_setting():
    assert RouteSettings.from_env({"ALIPAY_ROUTE_ALIPAY_MODEL": "payments"}).alipay_model == "payments"
    assert RouteSettings.from_env({"ALIPAY_ROUTE_HOME_REGIONS": "cn, cn-sh"}).home_regions == {"CN", "CN-SH"}
    with pytest.raises(ConfigurationError, match="topic_threshold"):
        RouteSettings.from_env({"ALIPAY_ROUTE_TOPIC_THRESHOLD": "high"})
    with pytest.raises(ConfigurationError, match="home_regions"):
        RouteSettings(home_regions=frozenset())
    with pytest.raises(ConfigurationError, match="home_regions.*ALIPAY_ROUTE_HOME_REGIONS"):
        RouteSettings.from_env({"ALIPAY_ROUTE_HOME_REGIONS": "CN, mainland china!"})
    with pytest.raises(ConfigurationError, match="regional_model.*ALIPAY_ROUTE_REGIONAL_MODEL"):
        RouteSettings(regional_model=" ")


def test_saving_is_alipay_price_minus_regional_cost():
    config = PricingConfig()  # 0.03 CNY per started 1,000 characters, 7.1 CNY per USD
    messages = [{"role": "user", "content": "yes"}]
    assert alipay_price_usd(messages, "ok", config) == pytest.approx(0.03 / 7.1)
    assert saved_usd(messages, "ok", 0.0001, config) == pytest.approx(0.03 / 7.1 - 0.0001)
    assert saved_usd(messages, "ok", 1.0, config) == 0.0
