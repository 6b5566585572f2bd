"""Pre-call guards around every gateway call: the app's client-side quota and the tenant's breaker.

Both are shared by every deployment with the same configuration (process-wide, or through Redis when
``redis_url`` is set), because Alipay's quota is per ``app_id`` and a failing tenant is failing for
every model routed to it. Retries are not ours: LiteLLM's Router is the retry loop.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .resilience import CircuitBreaker, MemoryBreaker, RateLimiter, RedisBreaker, get_limiter
from .settings import AlipaySettings

_breakers: dict[tuple, CircuitBreaker] = {}
_lock = threading.Lock()


def _breaker(settings: AlipaySettings) -> CircuitBreaker:
    config = (settings.redis_url, settings.breaker_threshold, settings.breaker_window, settings.breaker_cooldown)
    with _lock:
        found = _breakers.get(config)
        if found is None:
            kwargs: dict[str, Any] = {"threshold": settings.breaker_threshold, "window": settings.breaker_window,
                                      "cooldown": settings.breaker_cooldown}
            found = RedisBreaker(settings.redis_url, **kwargs) if settings.redis_url else MemoryBreaker(**kwargs)
            _breakers[config] = found
        return found


def clear_breakers() -> None:
    """Close every in-process breaker: for tests and for an operator who has fixed the gateway."""
    with _lock:
        for breaker in _breakers.values():
            if isinstance(breaker, MemoryBreaker):
                breaker.clear()


def is_breaker_failure(exc: BaseException) -> bool:
    """SYSTEM_ERROR-class outcomes open the breaker: 20000 / 5xx answers, stalls, drops, bad answers."""
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status >= 500 or status == 408)


class Guards:
    """The guards of one deployment's settings."""

    def __init__(self, settings: AlipaySettings) -> None:
        self.app_id = settings.app_id
        self.limiter: RateLimiter | None = None
        if settings.rate_limit_per_second or settings.rate_limit_per_minute:
            self.limiter = get_limiter(settings.redis_url, settings.rate_limit_per_second,
                                       settings.rate_limit_per_minute, settings.rate_limit_guard)
        self.breaker = _breaker(settings)

    def tenant(self, user_id: str | None) -> str:
        """The breaker key: the end user when known, else the app itself."""
        return f"{self.app_id}:{user_id}" if user_id else self.app_id

    def before(self, tenant: str, deadline: float | None) -> None:
        self.breaker.before_call(tenant)
        if self.limiter is not None:
            self.limiter.acquire(self.app_id, max_wait=_budget(deadline))

    async def abefore(self, tenant: str, deadline: float | None) -> None:
        await self.breaker.abefore_call(tenant)
        if self.limiter is not None:
            await self.limiter.aacquire(self.app_id, max_wait=_budget(deadline))

    def after(self, tenant: str, exc: BaseException | None) -> None:
        if exc is not None and is_breaker_failure(exc):
            self.breaker.record_failure(tenant)
        else:
            self.breaker.record_success(tenant)

    async def aafter(self, tenant: str, exc: BaseException | None) -> None:
        if exc is not None and is_breaker_failure(exc):
            await self.breaker.arecord_failure(tenant)
        else:
            await self.breaker.arecord_success(tenant)


def deadline_after(seconds: float | None) -> float | None:
    return time.monotonic() + seconds if seconds else None


def _budget(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())
