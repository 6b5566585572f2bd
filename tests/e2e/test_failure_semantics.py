"""Failure semantics an operator relies on, against the real emulator (and a real Redis that dies):
a breaker per deployment, one deadline on every path, Redis never on the success path."""

from __future__ import annotations

import asyncio
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import litellm
import pytest
from litellm.exceptions import MidStreamFallbackError

from litellm_alipay.emulator.redis_server import RedisServer
from litellm_alipay.resilience.guards import Guards
from litellm_alipay.settings import settings_for

ASK = [{"role": "user", "content": "hello"}]


class _Down(BaseHTTPRequestHandler):
    """A gateway that is down: every POST gets a 503 from whatever stands in front of it."""

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = b"upstream unavailable"
        self.send_response(503)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def down_gateway():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Down)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/gateway.do"
    server.shutdown()
    server.server_close()


async def test_a_failing_primary_never_blocks_its_healthy_fallback(deployment, alipay_emulator, down_gateway):
    primary = {**deployment, "api_base": down_gateway, "breaker_threshold": 3}
    router = litellm.Router(model_list=[
        {"model_name": "primary", "litellm_params": {"model": "alipay/ant-fin-chat", **primary}},
        {"model_name": "fallback", "litellm_params": {"model": "alipay/ant-fin-chat", **deployment}},
    ], fallbacks=[{"primary": ["fallback"]}], num_retries=0)
    requests = 40
    for i in range(requests):
        reply = await router.acompletion(model="primary", messages=[{"role": "user", "content": f"q{i}"}])
        assert reply.choices[0].message.content == f"You said: q{i}"  # every one answered by the fallback
    guards = Guards(settings_for(primary))
    assert guards.breaker.state(guards.key("ant-fin-chat", None)) == "open"  # the primary's did trip
    assert alipay_emulator.stats()["requests_by_method"]["alipay.cloud.ai.chat"] == requests


def test_the_lighter_model_on_the_same_gateway_has_its_own_breaker(deployment):
    guards = Guards(settings_for(deployment))
    assert guards.key("ant-fin-chat", None) != guards.key("ant-fin-chat-lite", None)
    assert guards.key("ant-fin-chat", "u1") != guards.key("ant-fin-chat", "u2")


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_stalls_cut_by_the_call_deadline_open_the_breaker(deployment, alipay_emulator, mode):
    settings = {**deployment, "breaker_threshold": 2, "read_timeout": 10}  # the deadline is the shorter

    async def call():
        if mode == "sync":
            return await asyncio.to_thread(litellm.completion, model="alipay/ant-fin-chat", messages=ASK,
                                           timeout=1.2, **settings)
        return await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, timeout=1.2, **settings)

    alipay_emulator.set_faults([{"kind": "stall", "seconds": 5, "next": 2}])
    for _ in range(2):
        with pytest.raises(litellm.Timeout):
            await call()
    with pytest.raises(litellm.ServiceUnavailableError) as info:
        await call()
    assert info.value.alipay_code == "circuit-open"
    assert alipay_emulator.stats()["requests_by_method"]["alipay.cloud.ai.chat"] == 2


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_trickling_stream_ends_at_its_deadline(deployment, alipay_emulator, mode):
    alipay_emulator.set_faults([{"kind": "trickle", "seconds": 0.05, "next": 1}])

    def consume_sync():
        for _ in litellm.completion(model="alipay/ant-fin-chat", messages=ASK, stream=True, timeout=1.5,
                                    **deployment):
            pass

    with pytest.raises((litellm.Timeout, MidStreamFallbackError)) as info:
        if mode == "sync":
            await asyncio.to_thread(consume_sync)
        else:
            stream = await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, stream=True,
                                               timeout=1.5, **deployment)
            async for _ in stream:
                pass
    assert "deadline" in str(info.value)
    assert alipay_emulator.stats()["faults_injected"] == {"trickle": 1}


def test_embeddings_share_one_deadline_across_batches(deployment, alipay_emulator):
    """Two batches of 0.8 s each against a 1.2 s deadline: each alone would fit, together they do not."""
    alipay_emulator.set_faults([{"kind": "latency", "seconds": 0.8, "next": 2}])
    with pytest.raises(litellm.Timeout):
        litellm.embedding(model="alipay/ant-fin-embed", input=[f"t{i}" for i in range(40)], timeout=1.2,
                          **deployment)
    assert alipay_emulator.stats()["requests_by_method"]["alipay.cloud.ai.embed"] == 2


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_tiny_client_timeout_never_opens_the_breaker(deployment, alipay_emulator, mode):
    """A deadline that expires before sending, or is too short to judge the gateway, is the caller's."""
    settings = {**deployment, "breaker_threshold": 1}
    for _ in range(3):
        with pytest.raises(litellm.Timeout) as info:
            if mode == "sync":
                await asyncio.to_thread(litellm.completion, model="alipay/ant-fin-chat", messages=ASK,
                                        timeout=1e-6, **settings)
            else:
                await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, timeout=1e-6, **settings)
        assert info.value.alipay_code in ("deadline-before-send", "deadline-short")
    reply = await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, **settings)
    assert reply.choices[0].message.content == "You said: hello"


async def test_without_a_timeout_a_router_stream_ends_at_the_deployments_stream_budget(deployment,
                                                                                      alipay_emulator):
    """The Router hands LiteLLM's default timeout (6000 s): that is "not given", so stream_timeout rules."""
    router = litellm.Router(model_list=[{"model_name": "fin", "litellm_params": {
        "model": "alipay/ant-fin-chat", **deployment, "stream_timeout": 1.5}}], num_retries=0)
    alipay_emulator.set_faults([{"kind": "trickle", "seconds": 0.05, "next": 1}])
    with pytest.raises((litellm.Timeout, MidStreamFallbackError)) as info:
        stream = await router.acompletion(model="fin", messages=ASK, stream=True)
        async for _ in stream:
            pass
    assert "deadline" in str(info.value)


async def test_bookkeeping_never_replaces_or_fails_the_call(deployment, alipay_emulator, monkeypatch):
    from litellm_alipay.provider import alipay_llm

    settings = settings_for(deployment)
    gateway = alipay_llm._gateway(settings)

    async def broken(*args, **kwargs):
        raise RuntimeError("bookkeeping store on fire")

    monkeypatch.setattr(gateway.counter, "abook", broken, raising=False)
    reply = await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, **deployment)
    assert reply.choices[0].message.content == "You said: hello"
    assert reply._hidden_params["response_cost"] > 0  # priced at the first tier instead
    monkeypatch.setattr(gateway.guards.breaker, "arecord_failure", broken, raising=False)
    alipay_emulator.set_faults([{"kind": "system_error", "next": 1}])
    with pytest.raises(litellm.ServiceUnavailableError) as info:  # the call's own error, not the breaker's
        await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, **deployment)
    assert "SYSTEM_ERROR" in str(info.value)


@pytest.fixture
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    server.stop()


async def test_a_dying_redis_never_fails_a_call_and_is_used_again_when_back(deployment, alipay_emulator,
                                                                            redis_server, caplog):
    import redis as redis_lib

    settings = {**deployment, "redis_url": redis_server.url, "rate_limit_per_second": 1000}
    shared = redis_lib.Redis.from_url(redis_server.url)
    await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, **settings)
    assert shared.keys("litellm_alipay:rl:*")  # the quota lives in Redis
    redis_server.kill()
    with caplog.at_level(logging.WARNING, logger="litellm_alipay"):
        for i in range(30):
            reply = await litellm.acompletion(model="alipay/ant-fin-chat", messages=[
                {"role": "user", "content": f"r{i}"}], **settings)
            assert reply.choices[0].message.content == f"You said: r{i}"
    outage = [r.getMessage() for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(outage) <= 4 and any("rate limiter" in m for m in outage)  # once per component, not per call
    redis_server.restart()
    shared = redis_lib.Redis.from_url(redis_server.url)
    for _ in range(200):  # bounded: the limiter goes back to Redis within its retry interval
        await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, **settings)
        if shared.keys("litellm_alipay:rl:*"):
            break
        await asyncio.sleep(0.05)
    assert shared.keys("litellm_alipay:rl:*")


async def test_an_auth_code_is_exchanged_once_across_workers(redis_server):
    """Two token managers (two workers) on one Redis, racing with the same single-use code."""
    from litellm_alipay.resilience.token_store import RedisTokenStore
    from litellm_alipay.resilience.tokens import TokenManager

    exchanges = []

    async def exchange(grant_type, value):
        exchanges.append((grant_type, value))
        await asyncio.sleep(0.05)  # the exchange takes a while: the race is real
        return {"access_token": "tok-1", "expires_in": 3600, "refresh_token": "rt-1", "re_expires_in": 7200,
                "user_id": "2088000000000001"}

    workers = [TokenManager(exchange, store=RedisTokenStore(redis_server.url)) for _ in range(2)]
    tokens = await asyncio.gather(*[w.get_token("k", auth_code="code-1") for w in workers for _ in range(3)])
    assert set(tokens) == {"tok-1"} and exchanges == [("authorization_code", "code-1")]
