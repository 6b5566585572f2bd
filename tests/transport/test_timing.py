"""The exchange-time bookkeeping (``transport/timing.py``) by itself: the union of a call's windows, the
fallback without LiteLLM's private helper, nothing raised into a call, and a generator bound only while it
runs. The real calls: tests/provider/test_llm_api_timing.py and tests/e2e/test_llm_api_timing.py."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from litellm_alipay.transport import timing


def _logging_obj() -> SimpleNamespace:
    return SimpleNamespace(model_call_details={"litellm_params": {"metadata": {"k": 1}}})


def test_the_union_counts_concurrent_windows_once_and_sequential_ones_added():
    assert timing._union([(0.0, 1.0)]) == 1.0
    assert timing._union([(0.0, 1.0), (2.0, 3.0)]) == 2.0
    assert timing._union([(0.5, 1.5), (0.0, 2.0), (0.2, 1.0)]) == 2.0  # batches in flight together
    assert timing._union([(3.0, 4.0), (0.0, 1.0), (0.5, 2.0)]) == 3.0


@pytest.mark.parametrize("helper", ["litellm", "none"])
def test_windows_recorded_with_and_without_litellms_helper(monkeypatch, helper):
    if helper == "none":
        monkeypatch.setattr(timing, "_helper", None)
    log = _logging_obj()

    @timing.timed
    def call(*, logging_obj):
        timing.exchanged(timing.clock() - 0.010)
        timing.exchanged(timing.clock() - 0.005)  # inside the first: the union is the first
        return "ok"

    assert call(logging_obj=log) == "ok"
    assert log.model_call_details["llm_api_duration_ms"] >= 10.0  # from 10 ms before the first to now
    windows = log.model_call_details["litellm_params"]["metadata"].get("llm_api_timing_windows", ())
    assert len(windows) == (2 if helper == "litellm" else 0)


def test_bookkeeping_never_fails_a_call(monkeypatch):
    def broken(*_args):
        raise RuntimeError("LiteLLM changed")

    monkeypatch.setattr(timing, "_helper", broken)

    @timing.timed
    async def call(*, logging_obj):
        timing.exchanged(timing.clock())
        return "answered"

    log = _logging_obj()
    assert asyncio.run(call(logging_obj=log)) == "answered"
    assert log.model_call_details["llm_api_duration_ms"] >= 0  # recorded all the same
    assert asyncio.run(call(logging_obj=None)) == "answered"  # nothing to record on
    assert asyncio.run(call(logging_obj=SimpleNamespace(model_call_details=None))) == "answered"
    timing.exchanged(timing.clock())  # outside any call: nothing happens


def test_a_stream_is_bound_only_while_it_runs():
    log, seen = _logging_obj(), []

    @timing.timed
    def chunks(*, logging_obj):
        seen.append(timing._CALL.get() is not None)
        timing.exchanged(timing.clock())
        yield 1
        seen.append(timing._CALL.get() is not None)
        yield 2

    @timing.timed
    async def achunks(*, logging_obj):
        seen.append(timing._CALL.get() is not None)
        yield 1
        seen.append(timing._CALL.get() is not None)
        yield 2

    async def consume():
        out = []
        async for item in achunks(logging_obj=log):
            out.append((item, timing._CALL.get() is None))
        return out

    out = []
    for item in chunks(logging_obj=log):
        out.append((item, timing._CALL.get() is None))  # the consumer never sees the binding
    assert out == [(1, True), (2, True)]
    assert asyncio.run(consume()) == [(1, True), (2, True)]
    assert seen == [True, True, True, True]
    assert "llm_api_duration_ms" in log.model_call_details
