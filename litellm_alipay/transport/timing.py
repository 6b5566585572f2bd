"""The upstream exchange's time, so LiteLLM can compute its own overhead for ``alipay/`` calls.

LiteLLM reports its overhead (the proxy's ``x-litellm-overhead-duration-ms`` header,
``_hidden_params["litellm_overhead_time_ms"]``, the logging payload Prometheus and Datadog read) as the
call's total time minus ``llm_api_duration_ms``, which its own HTTP providers record around the request
(``track_llm_api_timing``). A custom provider has to record it itself; this module is where it does.

- The provider binds the call's LiteLLM logging object for as long as the call runs (``timed``, a
  decorator on its entry points; a generator is bound only while it runs, never between chunks).
- The backends mark each exchange with two floats: ``started = clock()`` just before ``transport.send``,
  ``exchanged(started)`` once the answer is read (for a stream: once its headers arrived, as LiteLLM's own
  ``make_call`` timing ends). Signing and verification stay outside: they are the provider's own overhead.
  The backends never see the logging object.
- Each exchange becomes one LiteLLM timing window (``_set_duration_in_model_call_details``, or the field
  itself if that private helper ever goes); ``llm_api_duration_ms`` is the union of the call's windows,
  so an action loop's several exchanges and an embedding's concurrent batches count once each.

Bookkeeping never fails a call: nothing here raises into it.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: Epoch seconds: LiteLLM compares the windows with the proxy's receive instant.
clock = time.time


class _Exchanges:
    """One call's logging object and its exchanges so far: the first as two floats, a list only from the
    second on (an action loop, a token exchange before the call, an embedding's batches)."""

    __slots__ = ("details", "logging_obj", "start", "end", "more")

    def __init__(self, logging_obj: Any, details: dict) -> None:
        self.logging_obj = logging_obj
        self.details = details
        self.start = self.end = 0.0
        self.more: list[tuple[float, float]] | None = None

    def add(self, start: float, end: float) -> None:
        try:
            if self.more is None and not self.end:
                self.start, self.end = start, end
                covered = end - start
            else:
                if self.more is None:
                    self.more = [(self.start, self.end)]
                self.more.append((start, end))
                covered = _union(self.more)
            if _helper is not None:  # the window (the proxy's union reads them), and the field for this one
                try:
                    _helper(self.logging_obj, datetime.fromtimestamp(start), datetime.fromtimestamp(end))
                except Exception:  # noqa: BLE001 — the field below still tells LiteLLM
                    pass
            self.details["llm_api_duration_ms"] = covered * 1000.0  # the union of the call's windows
        except Exception:  # noqa: BLE001 — bookkeeping never fails a call
            pass


def _union(windows: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one window: concurrent batches count once, sequential steps add up."""
    total = 0.0
    span_start = span_end = None
    for start, end in sorted(windows):
        if span_end is None or start > span_end:
            if span_end is not None:
                total += span_end - span_start
            span_start, span_end = start, end
        elif end > span_end:
            span_end = end
    return total + (span_end - span_start if span_end is not None else 0.0)


_CALL: ContextVar[_Exchanges | None] = ContextVar("litellm_alipay_exchanges", default=None)


def exchanged(started: float) -> None:
    """One upstream exchange, from ``started`` (``clock()`` just before the send) to now."""
    call = _CALL.get()
    if call is not None:
        call.add(started, clock())


def _resolve_helper() -> Callable[[Any, datetime, datetime], None] | None:
    """LiteLLM's own recorder (``llm_api_duration_ms`` and the proxy's timing windows), when it has one."""
    try:
        from litellm.litellm_core_utils.logging_utils import _set_duration_in_model_call_details
    except Exception:  # noqa: BLE001 — a LiteLLM without it: the field is set here alone
        return None
    return _set_duration_in_model_call_details


_helper = _resolve_helper()


def _bind(kwargs: dict) -> _Exchanges | None:
    logging_obj = kwargs.get("logging_obj")
    details = getattr(logging_obj, "model_call_details", None)
    return _Exchanges(logging_obj, details) if isinstance(details, dict) else None


def timed(fn: F) -> F:
    """Bind the call's ``logging_obj`` (LiteLLM passes it by keyword) while ``fn`` runs, so the exchanges
    the call makes are recorded on it. Works on plain and async functions and on (async) generators."""
    if inspect.isasyncgenfunction(fn):
        @functools.wraps(fn)
        async def agen(*args: Any, **kwargs: Any) -> Any:
            call = _bind(kwargs)
            inner = fn(*args, **kwargs)
            if call is None:
                async for item in inner:
                    yield item
                return
            try:
                while True:
                    token = _CALL.set(call)
                    try:
                        item = await inner.__anext__()
                    except StopAsyncIteration:
                        return
                    finally:
                        _CALL.reset(token)
                    yield item
            finally:
                await inner.aclose()

        return agen  # type: ignore[return-value]
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(*args: Any, **kwargs: Any) -> Any:
            call = _bind(kwargs)
            inner = fn(*args, **kwargs)
            if call is None:
                yield from inner
                return
            try:
                while True:
                    token = _CALL.set(call)
                    try:
                        item = next(inner)
                    except StopIteration:
                        return
                    finally:
                        _CALL.reset(token)
                    yield item
            finally:
                inner.close()

        return gen  # type: ignore[return-value]
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def acall(*args: Any, **kwargs: Any) -> Any:
            token = _CALL.set(_bind(kwargs))
            try:
                return await fn(*args, **kwargs)
            finally:
                _CALL.reset(token)

        return acall  # type: ignore[return-value]

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        token = _CALL.set(_bind(kwargs))
        try:
            return fn(*args, **kwargs)
        finally:
            _CALL.reset(token)

    return call  # type: ignore[return-value]
