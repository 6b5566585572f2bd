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

State is per process. The clock is injectable, so the tests drive it without sleeping.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import QuotaExceededError

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


_pacers: dict[tuple[float, float, float], AdaptivePacer] = {}
_pacers_lock = threading.Lock()


def get_pacer(hold: float, ramp: float, factor: float) -> AdaptivePacer:
    """The process-wide pacer for this configuration: every deployment of one key shares its state."""
    config = (hold, ramp, factor)
    with _pacers_lock:
        found = _pacers.get(config)
        if found is None:
            found = _pacers[config] = AdaptivePacer(hold=hold, ramp=ramp, factor=factor)
        return found
