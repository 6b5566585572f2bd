"""The little state payments share between workers: in-process, or through Redis with ``redis_url``.

Used for the day's refunded total (reserve within a cap), each trade's refunded total (only grows),
pending confirmations (taken once) and handled notification ids (claimed once). Every operation is
one atomic step — a Lua script or a single command on Redis, one lock in process — so two workers can
never both pass a cap, both confirm one proposal or both apply one notification.
"""

from __future__ import annotations

import threading
import time

from ..resilience.redis_clients import LuaScript, RedisClients

_ADD_WITHIN = LuaScript(
    "local cur = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if cur + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return 0 end\n"
    "redis.call('INCRBY', KEYS[1], ARGV[1])\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[3])\n"
    "return 1\n"
)
_HMAX = LuaScript(
    "local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')\n"
    "if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end\n"
    "return 1\n"
)
_TAKE = LuaScript("local v = redis.call('GET', KEYS[1])\nif v then redis.call('DEL', KEYS[1]) end\nreturn v\n")


class SharedStore:
    """Keys are namespaced under ``alipay:payments:``; values are small strings and integers."""

    PREFIX = "alipay:payments:"

    def __init__(self, redis_url: str | None = None) -> None:
        self._redis = RedisClients(redis_url) if redis_url else None
        self._lock = threading.Lock()
        self._values: dict[str, tuple[str | int, float]] = {}  # key -> (value, expires at)
        self._hashes: dict[str, dict[str, int]] = {}
        self._sweep_at = 10_000

    def _client(self):
        return self._redis.for_running_loop() if self._redis is not None else None

    def _set(self, key: str, value: str | int, ttl: float) -> None:
        """(Under the lock.) Store a value; expired ones are swept now and then so claims cannot pile up."""
        self._values[key] = (value, time.monotonic() + ttl)
        if len(self._values) > self._sweep_at:
            now = time.monotonic()
            self._values = {k: v for k, v in self._values.items() if v[1] >= now}
            self._sweep_at = max(10_000, 2 * len(self._values))

    async def exists(self, key: str) -> bool:
        key = self.PREFIX + key
        if (client := self._client()) is not None:
            return bool(await client.exists(key))
        with self._lock:
            return self._live(key) is not None

    def _live(self, key: str) -> str | int | None:
        found = self._values.get(key)
        if found is None or found[1] < time.monotonic():
            self._values.pop(key, None)
            return None
        return found[0]

    async def add_within(self, key: str, amount: int, cap: int, ttl: int) -> bool:
        """Add ``amount`` unless the total would pass ``cap``; False (nothing added) if it would."""
        key = self.PREFIX + key
        if (client := self._client()) is not None:
            return bool(await _ADD_WITHIN.arun(client, [key], [amount, cap, ttl]))
        with self._lock:
            current = int(self._live(key) or 0)
            if current + amount > cap:
                return False
            self._set(key, current + amount, ttl)
            return True

    async def add(self, key: str, amount: int) -> None:
        key = self.PREFIX + key
        if (client := self._client()) is not None:
            await client.incrby(key, amount)
            return
        with self._lock:
            found = self._values.get(key)
            ttl = found[1] - time.monotonic() if found else 86400.0
            self._set(key, int(found[0] if found else 0) + amount, ttl)

    async def hget_int(self, key: str, field: str, default: int = 0) -> int:
        key = self.PREFIX + key
        if (client := self._client()) is not None:
            value = await client.hget(key, field)
            return default if value is None else int(value)
        with self._lock:
            return self._hashes.get(key, {}).get(field, default)

    async def hmax(self, key: str, field: str, value: int) -> None:
        """Raise the field to ``value`` (never lowers it)."""
        key = self.PREFIX + key
        if (client := self._client()) is not None:
            await _HMAX.arun(client, [key], [field, value])
            return
        with self._lock:
            fields = self._hashes.setdefault(key, {})
            fields[field] = max(fields.get(field, value), value)

    async def put(self, key: str, value: str, ttl: int) -> None:
        key = self.PREFIX + key
        if (client := self._client()) is not None:
            await client.set(key, value, ex=ttl)
            return
        with self._lock:
            self._set(key, value, ttl)

    async def take(self, key: str) -> str | None:
        """The value, deleted in the same step (so only one taker ever gets it)."""
        key = self.PREFIX + key
        if (client := self._client()) is not None:
            value = await _TAKE.arun(client, [key], [])
            return value.decode() if isinstance(value, bytes) else value
        with self._lock:
            value = self._live(key)
            self._values.pop(key, None)
            return None if value is None else str(value)

    async def claim(self, key: str, ttl: int) -> bool:
        """True for the first claimant of ``key`` within ``ttl``."""
        key = self.PREFIX + key
        if (client := self._client()) is not None:
            return bool(await client.set(key, "1", nx=True, ex=ttl))
        with self._lock:
            if self._live(key) is not None:
                return False
            self._set(key, "1", ttl)
            return True

    async def unclaim(self, key: str) -> None:
        key = self.PREFIX + key
        if (client := self._client()) is not None:
            await client.delete(key)
            return
        with self._lock:
            self._values.pop(key, None)
