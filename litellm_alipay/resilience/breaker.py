"""Circuit breaker per tenant key: stop calling a gateway that keeps failing, probe it with one call.

Why: Alipay's ``SYSTEM_ERROR`` / ``isp.unknow-error`` (code 20000) is an opaque failure whose outcome is
unknown, and the gateway also stalls (B4). Hammering it with retries multiplies load and latency and,
with payment actions (B5), multiplies uncertainty. After ``threshold`` such failures within ``window``
seconds the breaker opens: calls fail fast with ``CircuitOpenError`` (which the gateway maps to
``litellm.ServiceUnavailableError`` so the Router falls back) for ``cooldown`` seconds. Then it is
half-open and admits exactly one trial call; concurrent callers are still refused. The trial's success
closes the breaker; its failure re-opens it for another ``cooldown``.

Usage by the adapter::

    breaker.before_call(key)            # raises CircuitOpenError, or returns (True if this is the trial)
    try:
        result = send(...)
    except SystemErrorClass:            # decide with is_system_error(); timeouts count too
        breaker.record_failure(key)
        raise
    breaker.record_success(key)         # any answer the gateway *gave* counts (e.g. a 40004 business error)

Rules worth knowing:

* In the closed state failures are counted in a sliding ``window`` (``(now - window, now]``); a success
  does not erase them — a flapping gateway still trips the breaker.
* While open (before the cooldown ends) results of calls sent earlier are ignored: they say nothing about
  the gateway now, and must not extend or end the cooldown.
* The trial holds a lease of ``trial_timeout`` seconds. If its outcome is never recorded (the caller was
  cancelled or crashed) another trial is admitted after the lease — the breaker cannot wedge half-open.
  Make ``trial_timeout`` longer than a request's timeout.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import CircuitOpenError, ConfigurationError
from .redis_clients import LuaScript, RedisClients, server_time_us_lua

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

SYSTEM_ERROR_SUB_CODES = frozenset({"SYSTEM_ERROR", "ACQ.SYSTEM_ERROR", "isp.unknow-error", "aop.unknow-error"})


def is_system_error(code: str | int | None, sub_code: str | None) -> bool:
    """True for the SYSTEM_ERROR class of outcomes (A5 code 20000, B4 ``SYSTEM_ERROR``) the breaker counts.

    Business failures (40004 compliance, context length, …) and caller errors (400xx) are answers from a
    healthy gateway and must not open the breaker. Transport timeouts and dropped connections are not
    result codes; the adapter should count them as failures too.
    """
    return str(code) == "20000" or (sub_code or "") in SYSTEM_ERROR_SUB_CODES


class CircuitBreaker(ABC):
    """Interface the provider uses; ``key`` identifies the tenant (e.g. app_id + gateway URL)."""

    def __init__(
        self,
        *,
        threshold: int = 3,
        window: float = 300.0,
        cooldown: float = 30.0,
        trial_timeout: float = 120.0,
    ) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            raise ConfigurationError("threshold", f"must be a positive integer, got {threshold!r}")
        for name, value in (("window", window), ("cooldown", cooldown), ("trial_timeout", trial_timeout)):
            if value < 0:
                raise ConfigurationError(name, f"must be >= 0 seconds, got {value!r}")
        self.threshold = threshold
        self.window = float(window)
        self.cooldown = float(cooldown)
        self.trial_timeout = float(trial_timeout)

    @abstractmethod
    def before_call(self, key: str) -> bool:
        """Admit a call or raise ``CircuitOpenError``; return True when the admitted call is the trial."""

    @abstractmethod
    def record_success(self, key: str, trial: bool | None = None) -> None:
        """The gateway answered: closes a half-open breaker.

        ``trial`` says whether the call was the half-open trial (``before_call`` returned True): only the
        trial decides a half-open breaker; a call admitted earlier and answering late says nothing about
        the gateway now. ``None`` (unknown) counts as the trial.
        """

    @abstractmethod
    def record_failure(self, key: str, trial: bool | None = None) -> None:
        """A SYSTEM_ERROR-class failure: counts toward opening; the trial's re-opens a half-open breaker."""

    @abstractmethod
    def release_trial(self, key: str) -> None:
        """The admitted trial was never sent (refused locally, cancelled): admit another one at once."""

    @abstractmethod
    def state(self, key: str) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"`` (for metrics, health endpoints and tests)."""

    async def abefore_call(self, key: str) -> bool:
        """Async ``before_call``."""
        return self.before_call(key)

    async def arecord_success(self, key: str, trial: bool | None = None) -> None:
        """Async ``record_success``."""
        self.record_success(key, trial)

    async def arecord_failure(self, key: str, trial: bool | None = None) -> None:
        """Async ``record_failure``."""
        self.record_failure(key, trial)

    async def arelease_trial(self, key: str) -> None:
        """Async ``release_trial``."""
        self.release_trial(key)

    async def astate(self, key: str) -> str:
        """Async ``state``."""
        return self.state(key)


@dataclass
class _State:
    failures: deque[float] = field(default_factory=deque)
    open_until: float | None = None  # None: closed
    trial_until: float | None = None  # lease of the trial in flight, if any


class MemoryBreaker(CircuitBreaker):
    """In-process breaker, thread-safe; ``clock`` (seconds, default ``time.monotonic``) is injectable."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, **settings: Any) -> None:
        super().__init__(**settings)
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}

    def clear(self) -> None:
        """Forget every tenant's state (tests, or an operator after fixing the gateway)."""
        with self._lock:
            self._states.clear()

    def before_call(self, key: str) -> bool:
        with self._lock:
            now = self._clock()
            st = self._states.get(key)
            if st is None or st.open_until is None:
                return False
            if now < st.open_until:
                raise CircuitOpenError(key, st.open_until - now)
            if st.trial_until is not None and now < st.trial_until:
                raise CircuitOpenError(key, min(st.trial_until - now, self.cooldown))
            st.trial_until = now + self.trial_timeout
            return True

    def record_success(self, key: str, trial: bool | None = None) -> None:
        with self._lock:
            now = self._clock()
            st = self._states.get(key)
            if st is not None and st.open_until is not None and now >= st.open_until and trial is not False:
                del self._states[key]  # half-open -> closed, failure history cleared

    def record_failure(self, key: str, trial: bool | None = None) -> None:
        with self._lock:
            now = self._clock()
            st = self._states.setdefault(key, _State())
            if st.open_until is not None:
                if now >= st.open_until and trial is not False:  # half-open: the probe failed
                    st.open_until, st.trial_until = now + self.cooldown, None
                return
            st.failures.append(now)
            while st.failures and st.failures[0] <= now - self.window:
                st.failures.popleft()
            if len(st.failures) >= self.threshold:
                st.failures.clear()
                st.open_until, st.trial_until = now + self.cooldown, None

    def release_trial(self, key: str) -> None:
        with self._lock:
            st = self._states.get(key)
            if st is not None:
                st.trial_until = None

    def state(self, key: str) -> str:
        with self._lock:
            st = self._states.get(key)
            if st is None or st.open_until is None:
                return CLOSED
            return OPEN if self._clock() < st.open_until else HALF_OPEN


_BREAKER_LUA = server_time_us_lua() + """
-- KEYS[1]: hash {open_until, trial_until} (absent = closed); KEYS[2]: list of recent failure times.
-- ARGV: op, threshold, window_us, cooldown_us, trial_us, keep_ms, trial ("0": a call admitted before the
-- half-open state, whose outcome does not decide it).  Reply: {status, retry_after_us}.
local op = ARGV[1]
local is_trial = ARGV[7] ~= '0'
local threshold = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local cooldown = tonumber(ARGV[4])
local lease = tonumber(ARGV[5])
local keep = tonumber(ARGV[6])
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '-1')
local trial_until = tonumber(redis.call('HGET', KEYS[1], 'trial_until') or '-1')
local function open()
  redis.call('HSET', KEYS[1], 'open_until', fmt(now + cooldown))
  redis.call('HDEL', KEYS[1], 'trial_until')
  redis.call('PEXPIRE', KEYS[1], keep)
  redis.call('DEL', KEYS[2])
end
if op == 'state' then
  if open_until < 0 then return {0, 0} end
  if now < open_until then return {1, fmt(open_until - now)} end
  return {2, 0}
elseif op == 'before' then
  if open_until < 0 then return {0, 0} end
  if now < open_until then return {-1, fmt(open_until - now)} end
  if trial_until > now then return {-1, fmt(math.min(trial_until - now, cooldown))} end
  redis.call('HSET', KEYS[1], 'trial_until', fmt(now + lease))
  redis.call('PEXPIRE', KEYS[1], keep)
  return {1, 0}
elseif op == 'success' then
  if open_until >= 0 and now >= open_until and is_trial then redis.call('DEL', KEYS[1], KEYS[2]) end
  return {0, 0}
elseif op == 'release' then
  redis.call('HDEL', KEYS[1], 'trial_until')
  return {0, 0}
elseif op == 'failure' then
  if open_until >= 0 then
    if now >= open_until and is_trial then open() end
    return {0, 0}
  end
  redis.call('RPUSH', KEYS[2], fmt(now))
  redis.call('LTRIM', KEYS[2], -threshold, -1)
  redis.call('PEXPIRE', KEYS[2], math.floor(window / 1000) + 1)
  if redis.call('LLEN', KEYS[2]) >= threshold
      and tonumber(redis.call('LINDEX', KEYS[2], 0)) > now - window then
    open()
  end
  return {0, 0}
end
return redis.error_reply('unknown op ' .. tostring(op))
"""
_BREAKER = LuaScript(_BREAKER_LUA)


class RedisBreaker(CircuitBreaker):
    """Breaker whose state lives in Redis, shared by every process; each transition is one Lua script.

    Times come from the server's ``TIME``. An open breaker's state is kept for ``cooldown +
    trial_timeout + idle_ttl`` seconds after its last transition; a breaker left untouched longer than
    that forgets it was open (the next call then goes through as on a closed breaker).
    """

    def __init__(
        self, redis_url: str, *, prefix: str = "litellm_alipay:cb:", idle_ttl: float = 3600.0, **settings: Any
    ) -> None:
        super().__init__(**settings)
        self.redis_url = redis_url
        self.prefix = prefix
        self.idle_ttl = idle_ttl
        self._clients = RedisClients(redis_url)

    def _keys_args(self, key: str, op: str, trial: bool | None = None) -> tuple[list[str], list[str]]:
        keep_ms = int((self.cooldown + self.trial_timeout + self.idle_ttl) * 1000) + 1
        keys = [f"{self.prefix}{{{key}}}:state", f"{self.prefix}{{{key}}}:failures"]
        args = [op, str(self.threshold), str(int(self.window * 1e6)), str(int(self.cooldown * 1e6)),
                str(int(self.trial_timeout * 1e6)), str(keep_ms), "0" if trial is False else "1"]
        return keys, args

    def _run(self, key: str, op: str, trial: bool | None = None) -> tuple[int, int]:
        keys, args = self._keys_args(key, op, trial)
        status, retry_us = _BREAKER.run(self._clients.sync(), keys, args)
        return int(status), int(retry_us)

    async def _arun(self, key: str, op: str, trial: bool | None = None) -> tuple[int, int]:
        keys, args = self._keys_args(key, op, trial)
        status, retry_us = await _BREAKER.arun(self._clients.for_running_loop(), keys, args)
        return int(status), int(retry_us)

    @staticmethod
    def _admit(key: str, reply: tuple[int, int]) -> bool:
        status, retry_us = reply
        if status < 0:
            raise CircuitOpenError(key, retry_us / 1e6)
        return status == 1

    def before_call(self, key: str) -> bool:
        return self._admit(key, self._run(key, "before"))

    async def abefore_call(self, key: str) -> bool:
        return self._admit(key, await self._arun(key, "before"))

    def record_success(self, key: str, trial: bool | None = None) -> None:
        self._run(key, "success", trial)

    async def arecord_success(self, key: str, trial: bool | None = None) -> None:
        await self._arun(key, "success", trial)

    def record_failure(self, key: str, trial: bool | None = None) -> None:
        self._run(key, "failure", trial)

    async def arecord_failure(self, key: str, trial: bool | None = None) -> None:
        await self._arun(key, "failure", trial)

    def release_trial(self, key: str) -> None:
        self._run(key, "release")

    async def arelease_trial(self, key: str) -> None:
        await self._arun(key, "release")

    def state(self, key: str) -> str:
        return (CLOSED, OPEN, HALF_OPEN)[self._run(key, "state")[0]]

    async def astate(self, key: str) -> str:
        return (CLOSED, OPEN, HALF_OPEN)[(await self._arun(key, "state"))[0]]

    def close(self) -> None:
        """Close the sync client."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close this loop's async client and the sync client."""
        await self._clients.aclose()
