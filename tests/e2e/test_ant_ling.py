"""Ant's Ling/Ring models through ``alipay/`` against the emulated Ant Ling endpoint, in process:
``litellm.completion``/``acompletion``, streaming, tools, reasoning, errors, cost, and a Router built
from the shipped config. Every request quirk is asserted on what the emulator received."""

import asyncio
import json
from pathlib import Path

import httpx
import litellm
import pytest

from litellm_alipay.backends.ant_ling_settings import ant_ling_settings_for
from litellm_alipay.resilience.adaptive import get_pacer

from .configs import router_from_config
from .proxy_process import proxy_env

ROOT = Path(__file__).resolve().parents[2]
ASK = [{"role": "user", "content": "hello there"}]
WEATHER = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]


@pytest.fixture
def ling(alipay_emulator):
    return {"api_base": alipay_emulator.ant_ling_base, "api_key": alipay_emulator.ant_ling_api_key}


def test_ring_chat_with_reasoning_and_every_request_quirk(ling, alipay_emulator):
    reply = litellm.completion(
        model="alipay/Ring-2.6-1T", messages=[{"role": "developer", "content": "be brief"}, *ASK],
        reasoning_effort="low", allowed_openai_params=["reasoning_effort"], max_completion_tokens=50,
        temperature=1.5, store=True, **ling)
    message = reply.choices[0].message
    assert message.content == "You said: hello there"
    assert message.reasoning_content == "Reasoning (high): hello there"
    assert reply.usage.completion_tokens_details.reasoning_tokens > 0
    sent = alipay_emulator.ant_ling_received()[-1]
    assert sent == {"model": "Ring-2.6-1T", "messages": [{"role": "system", "content": "be brief"}, *ASK],
                    "temperature": 1.0, "max_tokens": 50, "reasoning": {"effort": "high"}}


def test_litellm_itself_refuses_reasoning_effort_without_allowed_openai_params(ling):
    with pytest.raises(litellm.UnsupportedParamsError, match="reasoning_effort"):
        litellm.completion(model="alipay/Ring-2.6-1T", messages=ASK, reasoning_effort="high", **ling)


def test_xhigh_effort_and_hybrid_thinking_off(ling, alipay_emulator):
    reply = litellm.completion(model="alipay/Ring-2.6-1T", messages=ASK, reasoning_effort="xhigh",
                               allowed_openai_params=["reasoning_effort"], **ling)
    assert reply.choices[0].message.reasoning_content.startswith("Reasoning (xhigh)")
    reply = litellm.completion(model="alipay/Ling-3.0-flash", messages=ASK, reasoning_effort="none",
                               allowed_openai_params=["reasoning_effort"], **ling)
    assert reply.choices[0].message.content == "You said: hello there"
    assert getattr(reply.choices[0].message, "reasoning_content", None) is None
    received = alipay_emulator.ant_ling_received()
    assert received[-2]["reasoning"] == {"effort": "xhigh"}
    assert received[-1]["thinking"] == {"type": "disabled"}


def test_stream_carries_reasoning_deltas_text_and_usage(ling, alipay_emulator):
    stream = litellm.completion(model="alipay/Ring-2.6-1T", messages=ASK, stream=True,
                                stream_options={"include_usage": True}, **ling)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    assert text == "You said: hello there" and reasoning == "Reasoning (high): hello there"
    usage = chunks[-1].usage
    assert usage.completion_tokens_details.reasoning_tokens > 0
    assert alipay_emulator.ant_ling_received()[-1]["stream_options"] == {"include_usage": True}


async def test_async_stream_and_tool_calls(ling, alipay_emulator):
    stream = await litellm.acompletion(model="alipay/Ling-3.0-flash", messages=ASK, stream=True, **ling)
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You said: hello there"
    assert any(getattr(c.choices[0].delta, "reasoning_content", None) for c in chunks if c.choices)

    ask = [{"role": "user", "content": "get_weather city=Hangzhou"}]
    reply = await litellm.acompletion(model="alipay/Ling-2.6-flash", messages=ask, tools=WEATHER,
                                      tool_choice="auto", **ling)
    call = reply.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Hangzhou"}
    assert reply.choices[0].finish_reason == "tool_calls"
    stream = await litellm.acompletion(model="alipay/Ling-2.6-flash", messages=ask, tools=WEATHER, stream=True,
                                       **ling)
    calls = [tc for c in [c async for c in stream] if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function.name == "get_weather"
    sent = alipay_emulator.ant_ling_received()[-2]
    assert sent["tools"] == WEATHER and sent["tool_choice"] == "auto"


def test_response_cost_is_what_completion_cost_computes_with_cny_beside(ling):
    first = litellm.completion(model="alipay/Ling-2.6-flash", messages=[{"role": "system", "content": "x " * 40},
                                                                       *ASK], **ling)
    again = litellm.completion(model="alipay/Ling-2.6-flash", messages=[{"role": "system", "content": "x " * 40},
                                                                       *ASK], **ling)
    assert again.usage.prompt_tokens_details.cached_tokens > 0
    for reply in (first, again):
        cost = reply._hidden_params["response_cost"]
        assert cost > 0 and litellm.completion_cost(completion_response=reply) == pytest.approx(cost, rel=1e-9)
        usage = reply.usage
        cached = usage.prompt_tokens_details.cached_tokens or 0
        cny = ((usage.prompt_tokens - cached) * 0.6 + cached * 0.06 + usage.completion_tokens * 1.8) / 1e6
        assert reply._hidden_params["alipay"]["cost_cny"] == pytest.approx(cny, rel=1e-9)
    assert again._hidden_params["response_cost"] < first._hidden_params["response_cost"]


def test_deployment_price_override(ling):
    reply = litellm.completion(model="alipay/Ling-2.6-1T", messages=ASK, price_input_per_million_usd=0.06,
                               price_output_per_million_usd=0.25, **ling)
    usage = reply.usage
    assert reply._hidden_params["response_cost"] == pytest.approx(
        (usage.prompt_tokens * 0.06 + usage.completion_tokens * 0.25) / 1e6, rel=1e-9)
    assert reply._hidden_params["alipay"]["cost_breakdown"]["prices"] == "deployment"


def test_embeddings_are_refused_clearly(ling):
    with pytest.raises(litellm.BadRequestError, match="Ant Ling offers no embeddings"):
        litellm.embedding(model="alipay/Ling-2.6-flash", input=["x"], **ling)


def test_wrong_key_is_an_authentication_error_that_never_shows_the_key(ling):
    secret = "sk-wrong-key-that-must-not-leak-1234"
    with pytest.raises(litellm.AuthenticationError) as info:
        litellm.completion(model="alipay/Ling-2.6-flash", messages=ASK, api_base=ling["api_base"], api_key=secret)
    assert secret not in str(info.value) and secret not in repr(info.value)


def test_unknown_model_is_not_found(ling):
    with pytest.raises(litellm.NotFoundError, match="does not exist"):
        litellm.completion(model="alipay/Ling-9-unknown", messages=ASK, **ling)


@pytest.mark.parametrize(("rule", "cls"), [
    ({"kind": "rate_limit"}, litellm.RateLimitError),
    ({"kind": "http_5xx", "status": 500}, litellm.InternalServerError),
    ({"kind": "http_5xx", "status": 503}, litellm.ServiceUnavailableError),
    ({"kind": "drop"}, litellm.APIConnectionError),
])
def test_endpoint_faults_map_for_the_router(ling, alipay_emulator, rule, cls):
    alipay_emulator.set_faults([{**rule, "methods": ["ant-ling.chat"], "next": 1}])
    with pytest.raises(cls):
        litellm.completion(model="alipay/Ling-2.6-flash", messages=ASK, **ling)
    assert litellm.completion(model="alipay/Ling-2.6-flash", messages=ASK, **ling).choices[0].message.content


def test_slow_down_paces_the_key_instead_of_a_retry_storm(alipay_emulator):
    deployment = {"api_base": alipay_emulator.ant_ling_base, "api_key": alipay_emulator.ant_ling_api_key,
                  "slow_down_hold": 600, "slow_down_factor": 0.5}
    settings = ant_ling_settings_for(deployment)
    pacer = get_pacer(settings.slow_down_hold, settings.slow_down_ramp, settings.slow_down_factor)
    alipay_emulator.set_faults([{"kind": "slow_down", "methods": ["ant-ling.chat"], "next": 1}])
    with pytest.raises(litellm.ServiceUnavailableError, match="Slow Down"):
        litellm.completion(model="alipay/Ling-2.6-flash", messages=ASK, **deployment)
    rate = pacer.rate(settings.app_id)
    assert rate is not None and rate <= 1.0  # one call measured: the pace dropped to (near) the minimum
    # a burst now fails fast on the client instead of reaching the endpoint
    with pytest.raises(litellm.RateLimitError):
        for _ in range(5):
            litellm.completion(model="alipay/Ling-2.6-flash", messages=ASK, timeout=0.5, **deployment)
    assert alipay_emulator.stats()["requests_by_method"]["ant-ling.chat"] <= 3


async def test_slow_down_pace_is_shared_through_redis(alipay_emulator, redis_url):
    from litellm_alipay.resilience.adaptive import RedisPacer

    deployment = {"api_base": alipay_emulator.ant_ling_base, "api_key": alipay_emulator.ant_ling_api_key,
                  "redis_url": redis_url, "slow_down_hold": 300}
    alipay_emulator.set_faults([{"kind": "slow_down", "methods": ["ant-ling.chat"], "next": 1}])
    with pytest.raises(litellm.ServiceUnavailableError):
        await litellm.acompletion(model="alipay/Ling-2.6-flash", messages=ASK, **deployment)
    another_instance = RedisPacer(redis_url, hold=300)
    assert another_instance.rate(ant_ling_settings_for(deployment).app_id) is not None


def test_stall_is_a_timeout_sync_and_async(ling, alipay_emulator):
    """The sync path drives the async one, so both get the call's timeout as a deadline."""
    alipay_emulator.set_faults([{"kind": "stall", "seconds": 30, "methods": ["ant-ling.chat"], "next": 2}])
    with pytest.raises(litellm.Timeout):
        asyncio.run(litellm.acompletion(model="alipay/Ling-2.6-flash", messages=ASK, timeout=1, **ling))
    with pytest.raises(litellm.Timeout):
        litellm.completion(model="alipay/Ling-2.6-flash", messages=ASK, timeout=1, **ling)


def test_emulated_endpoint_refuses_what_the_real_one_refuses(alipay_emulator):
    headers = {"Authorization": f"Bearer {alipay_emulator.ant_ling_api_key}"}
    url = alipay_emulator.ant_ling_base
    with httpx.Client(timeout=10) as http:
        assert http.get(url + "/models").status_code == 401
        ids = [m["id"] for m in http.get(url + "/models", headers=headers).json()["data"]]
        assert "Ring-2.6-1T" in ids and "Ling-3.0-flash-VL" in ids
        developer = http.post(url + "/chat/completions", headers=headers, json={
            "model": "Ling-2.6-flash", "messages": [{"role": "developer", "content": "x"}, *ASK]})
        assert developer.status_code == 400 and developer.json()["error"]["message"] == "Invalid Request Messages"
        hot = http.post(url + "/chat/completions", headers=headers,
                        json={"model": "Ling-2.6-flash", "messages": ASK, "temperature": 1.2})
        assert hot.status_code == 400 and "temperature" in hot.json()["error"]["message"]
        unknown = http.post(url + "/chat/completions", headers=headers, json={"model": "gpt-4o", "messages": ASK})
        assert unknown.status_code == 404


def test_router_from_the_shipped_config_falls_back_from_the_gateway_to_ling(alipay_emulator):
    env = proxy_env(alipay_emulator)
    router = router_from_config(ROOT / "config" / "litellm.yaml", env)
    alipay_emulator.set_faults([{"kind": "system_error", "methods": ["alipay.cloud.ai.chat"]}])
    reply = router.completion(model="fin-chat", messages=ASK)
    assert reply.model == "Ling-2.6-flash" and reply.choices[0].message.content == "You said: hello there"
    ring = router.completion(model="ring", messages=ASK, reasoning_effort="high")
    assert ring.choices[0].message.reasoning_content == "Reasoning (high): hello there"


def test_router_context_window_check_uses_the_registered_windows(alipay_emulator, deployment):
    """One model group, a 32k gateway model and a 256k Ling model: with pre-call checks the Router sends a
    prompt longer than the gateway model's window to Ling, every time (it would fail on the gateway)."""
    ling = {"api_base": alipay_emulator.ant_ling_base, "api_key": alipay_emulator.ant_ling_api_key}
    router = litellm.Router(model_list=[
        {"model_name": "chat", "litellm_params": {"model": "alipay/ant-fin-chat", **deployment}},
        {"model_name": "chat", "litellm_params": {"model": "alipay/Ling-2.6-flash", **ling}},
    ], enable_pre_call_checks=True, num_retries=0)
    long = [{"role": "user", "content": "word " * 40_000}]
    for _ in range(3):
        assert router.completion(model="chat", messages=long).model == "Ling-2.6-flash"
    assert alipay_emulator.stats()["requests_by_method"].get("alipay.cloud.ai.chat", 0) == 0


@pytest.mark.parametrize(("kind", "cause"), [("cut_stream", r"without \[DONE\]"), ("stream_error", "overloaded"),
                                             ("truncate", "broke off")])
async def test_a_broken_stream_is_never_reported_complete(ling, alipay_emulator, kind, cause):
    alipay_emulator.set_faults([{"kind": kind, "methods": ["ant-ling.chat"], "next": 1}])
    stream = await litellm.acompletion(model="alipay/Ling-2.6-flash", messages=ASK, stream=True, **ling)
    with pytest.raises(litellm.ServiceUnavailableError, match=cause):  # MidStreamFallbackError is one
        async for _ in stream:
            pass
