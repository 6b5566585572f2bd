"""Helpers of the resilience tests (a plain module: ``conftest`` names are ambiguous to import)."""

from __future__ import annotations

import threading


class FakeClock:
    """A settable clock (seconds) so time-dependent logic is tested without sleeping."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def max_in_window(times: list[int], window: int) -> int:
    """Largest number of times in any half-open window ``[t, t + window)`` (integers: exact)."""
    ordered = sorted(times)
    best, j = 0, 0
    for i, start in enumerate(ordered):
        while j < len(ordered) and ordered[j] < start + window:
            j += 1
        best = max(best, j - i)
    return best
