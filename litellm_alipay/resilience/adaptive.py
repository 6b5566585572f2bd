"""Adaptive client-side pacing for an endpoint that says "Slow Down" (Ant Ling's 503).

Ant Ling's guidance for a 503 "Slow Down": the rate surged; drop back, hold the rate steady for at
least 15 minutes, then ramp up slowly. Retrying at once (what a Router does with a 503) makes it worse.
So, as botocore's ``adaptive`` retry mode does with its client-side token bucket, each key (one API key)
keeps a send rate that is unlimited until the first "Slow Down"; then:

* the allowed rate becomes ``factor ×`` the rate measured over the last seconds (at least ``min_rate``);
* it is held there for ``hold`` seconds, then rises linearly back to the measured rate over ``ramp``
  seconds, after which pacing is off again; another "Slow Down" meanwhile starts over from the rate
  then allowed;
* a request waits for its slot within its time budget, else fails at once with ``QuotaExceededError``
  (a ``RateLimitError`` for the Router) without sending anything.

State is per process (``AdaptivePacer``), or shared by every process and proxy instance through Redis
(``RedisPacer``: one atomic Lua script on the Redis server's clock, the send rate measured over two fixed
windows). The in-process clock is injectable, so the tests drive it without sleeping.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import QuotaExceededError
from .redis_clients import LuaScript, RedisClients, server_time_us_lua

WINDOW = 5.0  # seconds over which the send rate is measured


@dataclass
class _State:
    sent: deque[float] = field(default_factory=deque)
    floor: float | None = None  # the rate allowed right after the last "Slow Down"
    ceiling: float = 0.0  # the measured rate then, the target of the ramp
    throttled_at: float = 0.0
    next_slot: float = 0.0


class AdaptivePacer:
    """Per-key send pacing that tightens on "Slow Down" and relaxes slowly."""

    def __init__(self, *, hold: float = 900.0, ramp: float = 900.0, factor: float = 0.5, min_rate: float = 0.2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.hold, self.ramp, self.factor, self.min_rate = hold, ramp, factor, min_rate
        self._clock = clock
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()

    def _state(self, key: str) -> _State:
        state = self._states.get(key)
        if state is None:
            state = self._states.setdefault(key, _State())
        return state

    def _measured(self, state: _State, now: float) -> float:
        while state.sent and state.sent[0] <= now - WINDOW:
            state.sent.popleft()
        return len(state.sent) / WINDOW

    def rate(self, key: str) -> float | None:
        """Requests per second allowed now; None when pacing is off."""
        with self._lock:
            return self._rate(self._state(key), self._clock())

    def _rate(self, state: _State, now: float) -> float | None:
        if state.floor is None:
            return None
        elapsed = now - state.throttled_at
        if elapsed < self.hold:
            return state.floor
        progress = (elapsed - self.hold) / self.ramp
        if progress >= 1:
            state.floor = None  # recovered: pacing off until the next "Slow Down"
            return None
        return state.floor + (state.ceiling - state.floor) * progress

    def slow_down(self, key: str) -> float:
        """Record a "Slow Down" answer; the new allowed rate."""
        with self._lock:
            state, now = self._state(key), self._clock()
            current = self._rate(state, now)
            measured = max(self._measured(state, now), self.min_rate)
            base = min(current, measured) if current is not None else measured
            state.floor = max(self.min_rate, base * self.factor)
            state.ceiling = max(measured, state.floor)
            state.throttled_at = now
            return state.floor

    def _book(self, key: str, max_wait: float | None) -> float:
        """Book the next slot: the seconds to wait before sending (0 when pacing is off)."""
        with self._lock:
            state, now = self._state(key), self._clock()
            rate = self._rate(state, now)
            wait = 0.0
            if rate is not None:
                slot = max(now, state.next_slot)
                wait = slot - now
                if max_wait is not None and wait > max_wait:
                    raise QuotaExceededError(key, wait, max_wait)
                state.next_slot = slot + 1.0 / rate
            state.sent.append(now + wait)
            self._measured(state, now)
            return wait

    def acquire(self, key: str, max_wait: float | None = None) -> None:
        wait = self._book(key, max_wait)
        if wait > 0:
            time.sleep(wait)

    async def aacquire(self, key: str, max_wait: float | None = None) -> None:
        wait = self._book(key, max_wait)
        if wait > 0:
            await asyncio.sleep(wait)

    async def aslow_down(self, key: str) -> float:
        return self.slow_down(key)


_PACE_LUA = server_time_us_lua() + """
local op = ARGV[1]
local hold, ramp = tonumber(ARGV[2]) * 1e6, tonumber(ARGV[3]) * 1e6
local factor, minrate = tonumber(ARGV[4]), tonumber(ARGV[5])
local maxwait, window = tonumber(ARGV[6]), tonumber(ARGV[7]) * 1e6
local h = redis.call('HMGET', KEYS[1], 'floor', 'ceiling', 'thr', 'next', 'wstart', 'wcount', 'pcount')
local floor, ceiling, thr = tonumber(h[1]), tonumber(h[2]) or 0, tonumber(h[3]) or 0
local nxt, wstart = tonumber(h[4]) or 0, tonumber(h[5]) or now
local wcount, pcount = tonumber(h[6]) or 0, tonumber(h[7]) or 0
if now - wstart >= window then
  if now - wstart >= 2 * window then pcount = 0 else pcount = wcount end
  wstart, wcount = now, 0
end
local measured = math.max(pcount, wcount) / (window / 1e6)
local rate = nil
if floor then
  local elapsed = now - thr
  if elapsed < hold then rate = floor
  else
    local progress = (elapsed - hold) / ramp
    if progress >= 1 then floor = nil else rate = floor + (ceiling - floor) * progress end
  end
end
local out = -1
if op == 'slow' then
  local m = math.max(measured, minrate)
  local base = m
  if rate and rate < m then base = rate end
  floor = math.max(minrate, base * factor)
  ceiling, thr = math.max(m, floor), now
  out = floor
elseif op == 'book' then
  local wait = 0
  if rate then
    local slot = math.max(now, nxt)
    wait = slot - now
    if maxwait >= 0 and wait > maxwait then return {1, fmt(wait)} end
    nxt = slot + 1e6 / rate
  end
  wcount = wcount + 1
  out = wait
elseif rate then
  out = rate
end
if floor then redis.call('HSET', KEYS[1], 'floor', tostring(floor)) else redis.call('HDEL', KEYS[1], 'floor') end
redis.call('HSET', KEYS[1], 'ceiling', tostring(ceiling), 'thr', fmt(thr), 'next', fmt(nxt), 'wstart', fmt(wstart),
           'wcount', wcount, 'pcount', pcount)
redis.call('PEXPIRE', KEYS[1], math.floor((hold + ramp + 2 * window) / 1000) + 1000)
return {0, tostring(out)}
"""


class RedisPacer:
    """``AdaptivePacer``'s behaviour with its state in Redis: a "Slow Down" seen by one proxy instance
    paces every instance using the same key. Redis is imported only when this class is used."""

    def __init__(self, url: str, *, hold: float = 900.0, ramp: float = 900.0, factor: float = 0.5,
                 min_rate: float = 0.2) -> None:
        self.hold, self.ramp, self.factor, self.min_rate = hold, ramp, factor, min_rate
        self._clients = RedisClients(url)
        self._script = LuaScript(_PACE_LUA)

    def _args(self, op: str, max_wait: float | None) -> list[Any]:
        wait_us = -1 if max_wait is None else int(max_wait * 1e6)
        return [op, self.hold, self.ramp, self.factor, self.min_rate, wait_us, WINDOW]

    @staticmethod
    def _key(key: str) -> str:
        return f"litellm_alipay:pace:{key}"

    @staticmethod
    def _result(key: str, reply: Any, max_wait: float | None) -> float:
        refused, value = int(reply[0]), float(reply[1])
        if refused:
            raise QuotaExceededError(key, value / 1e6, max_wait or 0.0)
        return value

    def rate(self, key: str) -> float | None:
        value = self._result(key, self._script.run(self._clients.sync(), [self._key(key)], self._args("rate", None)),
                             None)
        return None if value < 0 else value

    def slow_down(self, key: str) -> float:
        reply = self._script.run(self._clients.sync(), [self._key(key)], self._args("slow", None))
        return self._result(key, reply, None)

    async def aslow_down(self, key: str) -> float:
        client = self._clients.for_running_loop()
        return self._result(key, await self._script.arun(client, [self._key(key)], self._args("slow", None)), None)

    def acquire(self, key: str, max_wait: float | None = None) -> None:
        reply = self._script.run(self._clients.sync(), [self._key(key)], self._args("book", max_wait))
        wait = self._result(key, reply, max_wait) / 1e6
        if wait > 0:
            time.sleep(wait)

    async def aacquire(self, key: str, max_wait: float | None = None) -> None:
        client = self._clients.for_running_loop()
        reply = await self._script.arun(client, [self._key(key)], self._args("book", max_wait))
        wait = self._result(key, reply, max_wait) / 1e6
        if wait > 0:
            await asyncio.sleep(wait)


_pacers: dict[tuple, AdaptivePacer | RedisPacer] = {}
_pacers_lock = threading.Lock()


def get_pacer(hold: float, ramp: float, factor: float, redis_url: str | None = None) -> AdaptivePacer | RedisPacer:
    """The process-wide pacer for this configuration: every deployment of one key shares its state (and
    every process, through Redis, when ``redis_url`` is set)."""
    config = (hold, ramp, factor, redis_url)
    with _pacers_lock:
        found = _pacers.get(config)
        if found is None:
            found = _pacers[config] = (RedisPacer(redis_url, hold=hold, ramp=ramp, factor=factor) if redis_url
                                       else AdaptivePacer(hold=hold, ramp=ramp, factor=factor))
        return found
