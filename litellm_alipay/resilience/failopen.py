"""Redis is never on the success path: a shared component with an in-process stand-in.

Why: quotas and breakers are shared through Redis so several workers and proxy instances agree, but a
Redis that is down or slow must not fail, or noticeably delay, a single call. While Redis does not
answer (bounded by the clients' short socket timeouts), this worker uses its own in-process limiter or
breaker; Redis is tried again after ``retry_after`` seconds, and the shared state is used again as soon
as it answers. One WARNING per outage, one INFO when it ends — not one per call.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("litellm_alipay")


def redis_errors() -> tuple[type[BaseException], ...]:
    """What an unreachable or slow Redis raises (redis-py's errors, sockets, timeouts)."""
    from redis.exceptions import RedisError

    return (RedisError, OSError, TimeoutError)


class FailOpen:
    """Calls ``shared``'s methods; while Redis fails, the same methods of ``local`` instead."""

    def __init__(self, shared: Any, local: Any, what: str, retry_after: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.shared, self.local, self.what = shared, local, what
        self.retry_after = retry_after
        self._clock = clock
        self._down_until = 0.0
        self._outage = False
        self._lock = threading.Lock()
        self._errors = redis_errors()

    @property
    def degraded(self) -> bool:
        """True while this worker runs on its in-process stand-in."""
        return self._outage

    def _use_shared(self) -> bool:
        return self._clock() >= self._down_until

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self._down_until = self._clock() + self.retry_after
            first, self._outage = not self._outage, True
        if first:
            log.warning("%s: Redis unavailable (%s); this worker carries on in-process until it returns",
                        self.what, type(exc).__name__)

    def _recovered(self) -> None:
        if self._outage:
            with self._lock:
                was, self._outage = self._outage, False
            if was:
                log.info("%s: Redis is back; shared state in use again", self.what)

    def __getattr__(self, name: str) -> Any:
        shared = getattr(self.shared, name)
        local = getattr(self.local, name)
        if not callable(shared):
            return shared
        if inspect.iscoroutinefunction(shared):
            async def acall(*args: Any, **kwargs: Any) -> Any:
                if self._use_shared():
                    try:
                        result = await shared(*args, **kwargs)
                    except self._errors as exc:
                        self._failed(exc)
                    else:
                        self._recovered()
                        return result
                return await local(*args, **kwargs)

            return acall

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._use_shared():
                try:
                    result = shared(*args, **kwargs)
                except self._errors as exc:
                    self._failed(exc)
                else:
                    self._recovered()
                    return result
            return local(*args, **kwargs)

        return call
