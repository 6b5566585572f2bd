"""Lazily created Redis clients and Lua-script calls shared by the Redis-backed components.

Why its own module: the limiter and the breaker both need (a) one thread-safe sync client for the sync
path (``litellm.completion``) and (b) one ``redis.asyncio`` client *per event loop* for the async path —
an asyncio connection is bound to the loop that opened it, and a process may run several loops (the
proxy's, a test's, ``asyncio.run`` in a worker thread). Neither component should import Redis at all
unless it is used, so ``redis`` is imported here, lazily. Each loop's client is closed when that loop
shuts down (``loop_resources.PerLoop``), and ``litellm_alipay.aclose()`` closes them on demand.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from ..transport.loop_resources import ClientOwner, PerLoop, register_sync


class LuaScript:
    """A Lua source and its SHA1, run with EVALSHA and re-sent with EVAL after a SCRIPT FLUSH/restart."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def run(self, client: Any, keys: list[str], args: list[Any]) -> Any:
        """Run on a sync client; EVALSHA first so the script body is sent once per server."""
        from redis.exceptions import NoScriptError

        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return client.eval(self.source, len(keys), *keys, *args)

    async def arun(self, client: Any, keys: list[str], args: list[Any]) -> Any:
        """Run on a ``redis.asyncio`` client."""
        from redis.exceptions import NoScriptError

        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)


#: Seconds a Redis command or connect may take before the caller falls back to in-process state.
SOCKET_TIMEOUT = 0.5


class RedisClients(ClientOwner):
    """One sync client and one async client per running event loop, all for one URL, made on first use.

    Short socket timeouts: Redis carries shared bookkeeping, never a call's answer, so a slow Redis is
    treated as an absent one (``failopen.py``) instead of delaying the call.
    """

    def __init__(self, url: str, timeout: float = SOCKET_TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout
        self._lock = threading.Lock()
        self._sync: Any = None
        self._async: PerLoop[Any] = PerLoop(self._new_async, _close_async)
        register_sync(self)

    def _new_async(self) -> Any:
        import redis.asyncio

        return redis.asyncio.Redis.from_url(self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout)

    def sync(self) -> Any:
        """The process-wide sync client (redis-py clients are thread-safe through their pool)."""
        with self._lock:
            if self._sync is None:
                import redis

                self._sync = redis.Redis.from_url(self.url, socket_timeout=self.timeout,
                                                  socket_connect_timeout=self.timeout)
            return self._sync

    def for_running_loop(self) -> Any:
        """The async client of the calling coroutine's event loop."""
        return self._async.get()



async def _close_async(client: Any) -> None:
    await client.aclose()


def server_time_us_lua() -> str:
    """Lua prologue: ``now`` = the Redis server's clock in integer microseconds.

    Server time, not the caller's, so every process and proxy instance agrees on one clock. Integer
    microseconds since the epoch (~1.8e15) are exact in Lua's doubles (< 2**53); fractional seconds are
    not. ``redis.replicate_commands`` makes the writes after ``TIME`` legal on Redis 3.2–4.x (effects
    replication is the default, and the call a no-op, from Redis 5).
    """
    return (
        "if redis.replicate_commands then pcall(redis.replicate_commands) end\n"
        "local _t = redis.call('TIME')\n"
        "local now = tonumber(_t[1]) * 1000000 + tonumber(_t[2])\n"
        # tostring() of a large Lua number uses %.14g and loses digits: format integers explicitly.
        "local function fmt(x) return string.format('%.0f', x) end\n"
    )
