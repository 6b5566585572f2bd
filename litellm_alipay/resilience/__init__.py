"""Resilience components the provider composes around each gateway call; none imports litellm.

* ``limiter``  — client-side rate limiting per ``app_id`` (per-second and per-minute, memory or Redis);
* ``breaker``  — circuit breaker per tenant (memory or Redis);
* ``tokens``   — OAuth user-token cache with single-flight refresh (A8).

Errors: ``QuotaExceededError`` and ``CircuitOpenError`` in ``litellm_alipay.errors``.
"""

from .breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    CircuitBreaker,
    MemoryBreaker,
    RedisBreaker,
    is_system_error,
)
from .limiter import Booking, MemoryLimiter, RateLimiter, RedisLimiter, get_limiter
from .tokens import TOKEN_EXPIRED_SUB_CODES, TokenManager, UserToken, parse_token

__all__ = [
    "CLOSED",
    "HALF_OPEN",
    "OPEN",
    "TOKEN_EXPIRED_SUB_CODES",
    "Booking",
    "CircuitBreaker",
    "MemoryBreaker",
    "MemoryLimiter",
    "RateLimiter",
    "RedisBreaker",
    "RedisLimiter",
    "TokenManager",
    "UserToken",
    "get_limiter",
    "is_system_error",
    "parse_token",
]
