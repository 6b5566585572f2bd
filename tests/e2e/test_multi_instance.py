"""Two real ``litellm`` proxies, one Redis, one emulated Alipay app with a per-second quota.

The shipped ``config/litellm-redis.yaml`` puts the provider's client-side rate limiter in Redis
(``redis_url``), so the two proxies together stay inside the app's quota; without Redis each proxy
paces only itself and the gateway sees the sum. Everything runs as real processes on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
import yaml
from redis_server import RedisServer

from litellm_alipay.emulator.demo_keys import DEMO_APP_ID
from litellm_alipay.emulator.process import EmulatorProcess
from litellm_alipay.resilience.limiter import DEFAULT_GUARD

from .proxy_process import MASTER_KEY, ROOT, ProxyProcess, proxy_env

CONFIG = ROOT / "config" / "litellm-redis.yaml"
GATEWAY_QUOTA_PER_SECOND = 10  # the emulated app's contract quota
# What the proxies pace themselves to: 8 of the 10, a little under the quota as the README advises.
# The limiter books up to its limit at once, then the next burst one second *plus the guard* of Redis
# time later. The gateway's window slides over arrival times, and an arrival lags its booking by timer
# wake-up, signing and the network; without the guard two consecutive bursts overlap at the gateway by
# every request of the first that lagged more than one of the second, and at 8/s this run saw
# 12 AI.RATE_LIMITED of 72 sends on 2 cores (the Router retried them), so the test used to pace at 5/s.
# With the guard, n + 1 arrivals span at least 1 s as long as the lags differ by at most the guard, so
# the gateway sees at most 8 in any second of its own: no 429s, and headroom of 2 beyond that. Measured
# on 2 cores: guard 0 gave 9 and 10 AI.RATE_LIMITED per run; guards of 0.02 and 0.05 s already gave none,
# so the default 0.1 s is at least five times the lag spread seen here.
CLIENT_LIMIT_PER_SECOND = 8
CLIENT_GUARD = DEFAULT_GUARD  # the shipped default of rate_limit_guard, passed explicitly
REQUESTS = 60
CONCURRENCY = 20


@pytest.fixture(scope="module")
def redis():
    server = RedisServer()
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def quota_emulator(tmp_path_factory):
    """An emulator whose demo app has a 10/s quota.

    ``--demo`` registers the demo app without a quota; the ``--config`` YAML is applied after the demo
    keys are written to ``keys_dir``, so an ``apps`` entry with the demo app id and the demo public key
    file re-registers the same app with a quota.
    """
    keys_dir = tmp_path_factory.mktemp("quota-emulator") / "keys"
    config = {"apps": [{"app_id": DEMO_APP_ID, "app_public_key": str(keys_dir / "app_public_key.pem"),
                        "quota": {"per_second": GATEWAY_QUOTA_PER_SECOND}}]}
    with EmulatorProcess(config, keys_dir=keys_dir) as emulator:
        yield emulator


def _start_proxies(count: int, env: dict[str, str], config: Path = CONFIG) -> list[ProxyProcess]:
    """Start ``count`` proxies in parallel (each start is seconds of imports)."""
    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(ProxyProcess, config, env) for _ in range(count)]
        proxies, errors = [], []
        for future in futures:
            try:
                proxies.append(future.result())
            except RuntimeError as exc:
                errors.append(exc)
    if errors:
        for proxy in proxies:
            proxy.stop()
        raise errors[0]
    return proxies


def _proxy_env(emulator: EmulatorProcess, redis: RedisServer | None) -> dict[str, str]:
    env = proxy_env(emulator)
    env["ALIPAY_RATE_LIMIT_PER_SECOND"] = str(CLIENT_LIMIT_PER_SECOND)
    env["ALIPAY_RATE_LIMIT_GUARD"] = str(CLIENT_GUARD)
    if redis is not None:
        env.update(ALIPAY_REDIS_URL=redis.url, REDIS_HOST="127.0.0.1", REDIS_PORT=str(redis.port))
    else:  # each proxy on its own: no shared state at all
        env.update(ALIPAY_REDIS_URL="", REDIS_HOST="", REDIS_PORT="")
    return env


async def _drive(proxies: list[ProxyProcess]) -> tuple[list, float]:
    """REQUESTS chat calls spread round-robin over the proxies, CONCURRENCY in flight at once."""
    clients = [openai.AsyncOpenAI(base_url=p.base_url, api_key=MASTER_KEY, max_retries=0, timeout=60)
               for p in proxies]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int):
        async with gate:
            client = clients[i % len(clients)]
            return await client.chat.completions.create(
                model="fin-chat", messages=[{"role": "user", "content": f"balance {i}"}])

    started = time.monotonic()
    try:
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(one(i) for i in range(REQUESTS)), return_exceptions=True), timeout=120)
    finally:
        for client in clients:
            await client.close()
    return outcomes, time.monotonic() - started


async def _run_two_proxies(emulator: EmulatorProcess, redis: RedisServer | None) -> tuple[list, float]:
    """Two proxies with one config, the gateway's stats reset once they serve, the load, then stop."""
    with tempfile.TemporaryDirectory() as folder:
        config = CONFIG
        if redis is None:  # LiteLLM >= 1.110 refuses an empty router redis_host at start-up: leave it out
            shipped = yaml.safe_load(CONFIG.read_text())
            for key in ("redis_host", "redis_port"):
                shipped["router_settings"].pop(key)
            config = Path(folder) / "litellm-no-redis.yaml"
            config.write_text(yaml.safe_dump(shipped))
        proxies = _start_proxies(2, _proxy_env(emulator, redis), config)
        try:
            emulator.reset()
            return await _drive(proxies)
        finally:
            for proxy in proxies:
                proxy.stop()


def _per_second(emulator: EmulatorProcess) -> dict[int, int]:
    stats = emulator.stats()
    return {int(s): n for s, n in stats["requests_per_second"].get(DEMO_APP_ID, {}).items()}


async def test_two_proxies_sharing_redis_stay_within_the_apps_quota(quota_emulator, redis):
    outcomes, elapsed = await _run_two_proxies(quota_emulator, redis)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert not failures, f"{len(failures)} of {REQUESTS} failed, first: {failures[0]!r}"
    assert [o.choices[0].message.content for o in outcomes] == [f"You said: balance {i}" for i in range(REQUESTS)]

    stats = quota_emulator.stats()
    counts = _per_second(quota_emulator)
    print(f"\nshared Redis: {REQUESTS} requests over 2 proxies in {elapsed:.1f} s; gateway per second: "
          f"{list(counts.values())} (max {max(counts.values())}, quota {GATEWAY_QUOTA_PER_SECOND}, "
          f"client limit {CLIENT_LIMIT_PER_SECOND}, guard {CLIENT_GUARD} s); rejections {stats['rejections']}")
    assert stats["rejections"].get("AI.RATE_LIMITED", 0) == 0
    assert stats["requests_by_app"][DEMO_APP_ID] == REQUESTS  # no retries were needed
    assert sum(counts.values()) == REQUESTS
    # Bookings are at most CLIENT_LIMIT in any 1 s + guard of the one Redis clock both proxies use; the
    # gateway's own sliding count stayed within its quota (no 429 above), and so does any calendar second.
    assert max(counts.values()) <= GATEWAY_QUOTA_PER_SECOND
    # 60 requests in bursts of 8 spaced 1 s + guard apart: the 8th burst goes (8 - 1) * 1.1 = 7.7 s after
    # the first, so a run shorter than that (less slack for the first burst's latency) was not jointly paced.
    bursts = math.ceil(REQUESTS / CLIENT_LIMIT_PER_SECOND)
    assert elapsed >= (bursts - 1) * (1 + CLIENT_GUARD) - 0.5


async def test_without_redis_each_proxy_paces_only_itself_and_the_gateway_refuses(quota_emulator):
    outcomes, elapsed = await _run_two_proxies(quota_emulator, None)
    stats = quota_emulator.stats()
    counts = _per_second(quota_emulator)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    print(f"\nno Redis: {REQUESTS} requests over 2 proxies in {elapsed:.1f} s; gateway per second: "
          f"{list(counts.values())} (max {max(counts.values())}); rejections {stats['rejections']}; "
          f"client-visible failures {len(failures)}")
    # Each proxy keeps its own 8/s, so the gateway sees both: twice the configured app-wide rate.
    assert max(counts.values()) > CLIENT_LIMIT_PER_SECOND
    assert all(isinstance(f, openai.APIError) for f in failures)


def test_shipped_redis_config_is_the_one_under_test():
    text = Path(CONFIG).read_text()
    # The shared Redis comes from ALIPAY_REDIS_URL (read by the provider), never from litellm_params,
    # which the proxy's /model/info shows.
    assert "redis_url:" not in text and "ALIPAY_REDIS_URL" in text
    assert "rate_limit_per_second: os.environ/ALIPAY_RATE_LIMIT_PER_SECOND" in text
    assert "redis_host: os.environ/REDIS_HOST" in text


CHAOS_REQUESTS = 500


async def test_redis_killed_mid_run_fails_no_request_and_is_shared_again(alipay_emulator_process):
    """Two proxies on one Redis; Redis is killed after 150 answers and restarted after 350: every one of
    the 500 requests is answered, and the quota lives in Redis again once it is back."""
    import redis as redis_lib

    server = RedisServer()
    server.start()
    env = _proxy_env(alipay_emulator_process, server)
    env.update(ALIPAY_RATE_LIMIT_PER_SECOND="100000", REDIS_HOST="", REDIS_PORT="")  # our Redis use only
    proxies = _start_proxies(2, env)
    clients = [openai.AsyncOpenAI(base_url=p.base_url, api_key=MASTER_KEY, max_retries=0, timeout=60)
               for p in proxies]
    done = 0
    killed = asyncio.Event()
    back = asyncio.Event()
    gate = asyncio.Semaphore(16)

    async def one(i: int) -> str:
        nonlocal done
        async with gate:
            reply = await clients[i % 2].chat.completions.create(
                model="fin-chat", messages=[{"role": "user", "content": f"r{i}"}])
        done += 1
        if done == 150:
            server.kill()
            killed.set()
        elif done == 350:
            server.restart()
            back.set()
        return reply.choices[0].message.content

    try:
        alipay_emulator_process.reset()
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(one(i) for i in range(CHAOS_REQUESTS)), return_exceptions=True), timeout=300)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        assert killed.is_set() and back.is_set()
        assert not failures, f"{len(failures)} of {CHAOS_REQUESTS} failed, first: {failures[0]!r}"
        assert outcomes == [f"You said: r{i}" for i in range(CHAOS_REQUESTS)]
        shared = redis_lib.Redis.from_url(server.url)
        for i in range(300):  # bounded: each proxy tries Redis again within a second of its last failure
            if shared.keys("litellm_alipay:rl:*"):
                break
            await clients[i % 2].chat.completions.create(model="fin-chat", messages=[{"role": "user", "content": "x"}])
        assert shared.keys("litellm_alipay:rl:*"), "the quota never went back to Redis"
        warnings = [line for p in proxies for line in p.output if "Redis unavailable" in line]
        print(f"\nRedis killed mid-run: {CHAOS_REQUESTS} requests, 0 failed; {len(warnings)} outage warnings")
        assert len(warnings) <= 2 * 4  # once per component per proxy, not once per call
    finally:
        for client in clients:
            await client.close()
        for proxy in proxies:
            proxy.stop()
        server.stop()
