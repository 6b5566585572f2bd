"""Local overload is this process's problem, not the gateway's: out of file descriptors mid-burst, the
calls that cannot get a socket fail as ``RateLimitError`` ``local-overload`` (nothing sent), never as a
gateway connect failure or timeout, and the breaker (threshold 1 here) does not open."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import asyncio, json, os, resource, sys
    import litellm, litellm_alipay
    litellm_alipay.register()
    ask = [{"role": "user", "content": "hello"}]
    settings = dict(pool_size=1, breaker_threshold=1)

    async def one():
        try:
            await litellm.acompletion(model="alipay/ant-fin-chat", messages=ask, **settings)
            return "ok"
        except Exception as exc:
            return f"{type(exc).__name__}:{getattr(exc, 'alipay_code', None)}"

    async def main():
        assert await one() == "ok"
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 8, hard))
        try:
            burst = await asyncio.gather(*(one() for _ in range(40)))
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        print(json.dumps({"burst": burst, "after": await one()}))

    asyncio.run(main())
""")


def test_out_of_sockets_is_local_overload_and_never_trips_the_breaker(alipay_emulator):
    env = {**os.environ, **alipay_emulator.env()}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result["burst"]) <= {"ok", "RateLimitError:local-overload"}, result["burst"]
    assert "RateLimitError:local-overload" in result["burst"]  # the limit did bite
    assert result["after"] == "ok"  # no breaker opened by it
