"""Item 5: per-loop HTTP and Redis clients end with their loop; ``litellm_alipay.aclose()`` ends them on
demand; nothing is left for the interpreter to complain about at exit."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap

import litellm
from redis_server import redis_url  # noqa: F401  (the real redis-server fixture)

import litellm_alipay

ASK = [{"role": "user", "content": "hello"}]


def open_sockets() -> int:
    """Sockets this process holds now, from /proc/self/fd."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:  # the descriptor listdir itself used is gone already
            pass
    return count


def test_100_asyncio_runs_leave_no_socket_open(deployment, redis_url):  # noqa: F811
    # Redis-backed limiter and month counter too: their per-loop redis.asyncio clients must go as well.
    settings = {**deployment, "redis_url": redis_url, "rate_limit_per_second": 10_000}

    async def one() -> str:
        reply = await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, **settings)
        return reply.choices[0].message.content

    assert asyncio.run(one()) == "You said: hello"  # warm-up: imports, LiteLLM's own lazy state
    gc.collect()  # sockets of earlier tests' dropped objects go now, not during the count
    before = open_sockets()
    answers = [asyncio.run(one()) for _ in range(100)]
    assert answers == ["You said: hello"] * 100
    gc.collect()
    assert open_sockets() <= before  # a client kept per loop would leave 100 (one per run) or more


async def test_public_aclose_releases_the_running_loops_clients(deployment):
    gc.collect()
    before = open_sockets()
    settings = {**deployment, "pool_size": 17}  # a transport of its own, made by this call
    await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, **settings)
    assert open_sockets() > before  # the kept-alive connection
    await litellm_alipay.aclose()
    assert open_sockets() <= before
    reply = await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, **settings)
    assert reply.choices[0].message.content == "You said: hello"  # made again on next use


def test_no_unclosed_warning_at_interpreter_exit(alipay_emulator):
    script = textwrap.dedent("""
        import asyncio, gc, warnings
        import litellm, litellm_alipay
        warnings.simplefilter("always")
        litellm_alipay.register()
        ask = [{"role": "user", "content": "hello"}]

        async def one(pool_size):
            reply = await litellm.acompletion(model="alipay/ant-fin-chat", messages=ask, pool_size=pool_size)
            assert reply.choices[0].message.content == "You said: hello"

        for pool_size in (30, 7):
            for _ in range(5):
                asyncio.run(one(pool_size))
        loop = asyncio.new_event_loop()        # a loop managed by hand: aclose() before closing it
        loop.run_until_complete(one(30))
        loop.run_until_complete(one(7))
        loop.run_until_complete(litellm_alipay.aclose())
        loop.close()
        from litellm_alipay.transport import http as transport
        transport._transports.clear()  # what interpreter exit does: every client still open now complains
        gc.collect()
        print("done")
    """)
    env = {**os.environ, **alipay_emulator.env(), "PYTHONWARNINGS": "always"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr[-3000:]
    assert "Unclosed" not in done.stderr, done.stderr[-3000:]
    assert "ResourceWarning" not in done.stderr, done.stderr[-3000:]
