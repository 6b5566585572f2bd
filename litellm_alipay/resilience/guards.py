"""Pre-call guards around every gateway call: the app's client-side quota and the deployment's breaker.

The quota is per ``app_id`` (Alipay counts per app, whatever the model), shared process-wide or through
Redis. The breaker protects a *dependency*: one key per deployment (gateway URL, app, model) and tenant,
so a failing primary never refuses its healthy fallback. It counts what it is for — 20000, 5xx, stalls
(a call cut by its own deadline included), drops, unverifiable answers — and not a caller's
cancellation, a business 4xx or a local refusal. Redis is never on the success path (``failopen.py``),
and bookkeeping never replaces the call's own exception. Retries are not ours: the Router retries.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Protocol

from . import CircuitBreaker, MemoryBreaker, RateLimiter, RedisBreaker, get_limiter
from .failopen import FailOpen

log = logging.getLogger("litellm_alipay")


class GuardSettings(Protocol):
    """What the guards read of a deployment's settings (the gateway's and Ant Ling's settings objects
    both have it): declared here so ``resilience/`` does not depend on ``settings.py``."""

    app_id: str
    gateway_url: str
    redis_url: str | None
    breaker_threshold: int
    breaker_window: float
    breaker_cooldown: float
    rate_limit_per_second: int | None
    rate_limit_per_minute: int | None
    rate_limit_guard: float


_breakers: dict[tuple, Any] = {}
_limiters: dict[tuple, Any] = {}
_lock = threading.Lock()
#: ``alipay_code`` of refusals made here, before anything was sent: never a gateway failure.
LOCAL_CODES = frozenset({"client-quota", "circuit-open", "configuration", "local-overload", "LocalOverloadError",
                         "data-residency", "action-in-doubt", "tenant-mismatch", "deadline-before-send",
                         "deadline-short", "not-alipay"})


def _breaker(settings: GuardSettings) -> CircuitBreaker:
    config = (settings.redis_url, settings.breaker_threshold, settings.breaker_window, settings.breaker_cooldown)
    with _lock:
        found = _breakers.get(config)
        if found is None:
            kwargs: dict[str, Any] = {"threshold": settings.breaker_threshold, "window": settings.breaker_window,
                                      "cooldown": settings.breaker_cooldown}
            found = MemoryBreaker(**kwargs)
            if settings.redis_url:
                found = FailOpen(RedisBreaker(settings.redis_url, **kwargs), found, "circuit breaker")
            _breakers[config] = found
        return found


def _limiter(settings: GuardSettings) -> RateLimiter | None:
    if not (settings.rate_limit_per_second or settings.rate_limit_per_minute):
        return None
    args = (settings.rate_limit_per_second, settings.rate_limit_per_minute, settings.rate_limit_guard)
    local = get_limiter(None, *args)
    if not settings.redis_url:
        return local
    with _lock:
        config = (settings.redis_url, *args)
        found = _limiters.get(config)
        if found is None:
            found = _limiters[config] = FailOpen(get_limiter(settings.redis_url, *args), local, "rate limiter")
        return found


def clear_breakers() -> None:
    """Close every in-process breaker: for tests and for an operator who has fixed the gateway."""
    with _lock:
        for breaker in _breakers.values():
            local = breaker.local if isinstance(breaker, FailOpen) else breaker
            if isinstance(local, MemoryBreaker):
                local.clear()


def is_breaker_failure(exc: BaseException) -> bool:
    """SYSTEM_ERROR-class outcomes open the breaker: 20000 / 5xx answers, stalls, drops, bad answers."""
    if getattr(exc, "alipay_code", None) in LOCAL_CODES:
        return False
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status >= 500 or status == 408)


class Guards:
    """The guards of one deployment's settings."""

    def __init__(self, settings: GuardSettings) -> None:
        self.app_id = settings.app_id
        self.scope = f"{settings.gateway_url}|{settings.app_id}"
        self.limiter = _limiter(settings)
        self.breaker = _breaker(settings)

    def key(self, model: str, user_id: str | None) -> str:
        """The breaker key: this deployment (gateway, app, model) and the tenant (end user, else app)."""
        return f"{self.scope}|{model}|{user_id or '-'}"

    def tenant(self, user_id: str | None) -> str:
        """Kept for callers that predate per-deployment keys: the app-wide key of a tenant."""
        return self.key("*", user_id)

    def before(self, key: str, deadline: float | None) -> bool:
        """Admit the call (True: it is the breaker's half-open trial) and wait for its quota slot."""
        trial = self.breaker.before_call(key)
        if self.limiter is not None:
            try:
                self.limiter.acquire(self.app_id, max_wait=_budget(deadline))
            except BaseException:
                if trial:  # the trial was never sent: the next call may probe at once
                    self.breaker.release_trial(key)
                raise
        return trial

    async def abefore(self, key: str, deadline: float | None) -> bool:
        trial = await self.breaker.abefore_call(key)
        if self.limiter is not None:
            try:
                await self.limiter.aacquire(self.app_id, max_wait=_budget(deadline))
            except BaseException:
                if trial:
                    await self.breaker.arelease_trial(key)
                raise
        return trial

    def after(self, key: str, exc: BaseException | None, trial: bool = False) -> None:
        """Record the outcome; never raises (the call's own result or exception is what matters).

        A cancellation or a local refusal says nothing about the gateway: the trial (if it was one) is
        released for the next call, and nothing is recorded."""
        try:
            if _says_nothing(exc):
                if trial:
                    self.breaker.release_trial(key)
            elif exc is not None and is_breaker_failure(exc):
                self.breaker.record_failure(key, trial)
            else:
                self.breaker.record_success(key, trial)
        except Exception as failure:  # noqa: BLE001 - bookkeeping never replaces the call's outcome
            log.warning("breaker bookkeeping failed (%s)", type(failure).__name__)

    async def aafter(self, key: str, exc: BaseException | None, trial: bool = False) -> None:
        try:
            if _says_nothing(exc):
                if trial:
                    await self.breaker.arelease_trial(key)
            elif exc is not None and is_breaker_failure(exc):
                await self.breaker.arecord_failure(key, trial)
            else:
                await self.breaker.arecord_success(key, trial)
        except Exception as failure:  # noqa: BLE001 - bookkeeping never replaces the call's outcome
            log.warning("breaker bookkeeping failed (%s)", type(failure).__name__)


def _says_nothing(exc: BaseException | None) -> bool:
    return isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | GeneratorExit) or (
        exc is not None and getattr(exc, "alipay_code", None) in LOCAL_CODES)


def deadline_after(seconds: float | None) -> float | None:
    return time.monotonic() + seconds if seconds else None


def remaining(deadline: float | None) -> float | None:
    """Seconds left before ``deadline`` (never negative), None without one."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


_budget = remaining
