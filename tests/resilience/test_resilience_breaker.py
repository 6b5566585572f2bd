"""The breaker's life cycle — closed, open (fast fail), half-open with exactly one trial, closed again or
re-opened — in memory with a fake clock and in a real Redis shared by instances, threads and coroutines."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from resilience_helpers import FakeClock

from litellm_alipay.errors import CircuitOpenError, ConfigurationError
from litellm_alipay.resilience.breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    CircuitBreaker,
    MemoryBreaker,
    RedisBreaker,
    is_system_error,
)


def _admit_concurrently(breaker: CircuitBreaker, key: str, callers: int) -> tuple[int, int, int]:
    """(trials admitted, plain admissions, refusals) when ``callers`` threads call before_call at once."""
    results: list[object] = []
    lock = threading.Lock()
    barrier = threading.Barrier(callers)

    def worker() -> None:
        barrier.wait(timeout=10)
        try:
            outcome: object = breaker.before_call(key)
        except CircuitOpenError as exc:
            outcome = exc
        with lock:
            results.append(outcome)

    pool = [threading.Thread(target=worker) for _ in range(callers)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=30)
    assert len(results) == callers
    return (
        sum(1 for r in results if r is True),
        sum(1 for r in results if r is False),
        sum(1 for r in results if isinstance(r, CircuitOpenError)),
    )


def _wait_for_state(breaker: CircuitBreaker, key: str, wanted: str, deadline_s: float = 5.0) -> None:
    """Bounded poll of a condition (real-time cooldown in Redis), not a fixed sleep."""
    deadline = time.monotonic() + deadline_s
    while breaker.state(key) != wanted:
        assert time.monotonic() < deadline, f"breaker never became {wanted}"
        time.sleep(0.01)


# ---------------------------------------------------------------------------------------- memory
def test_opens_after_threshold_failures_and_fails_fast(clock: FakeClock, key: str) -> None:
    breaker = MemoryBreaker(clock=clock)  # defaults: 3 failures / 300 s -> open 30 s
    for _ in range(2):
        assert breaker.before_call(key) is False
        breaker.record_failure(key)
    assert breaker.state(key) == CLOSED
    breaker.record_failure(key)
    assert breaker.state(key) == OPEN
    clock.advance(10)
    with pytest.raises(CircuitOpenError) as info:
        breaker.before_call(key)
    assert info.value.retry_after == pytest.approx(20.0)
    assert info.value.key == key


def test_failures_outside_the_window_do_not_count(clock: FakeClock, key: str) -> None:
    breaker = MemoryBreaker(clock=clock, threshold=3, window=300)
    breaker.record_failure(key)
    breaker.record_failure(key)
    clock.advance(300)  # the first two leave the window (it is (now - 300, now])
    breaker.record_failure(key)
    breaker.record_failure(key)
    assert breaker.state(key) == CLOSED
    breaker.record_failure(key)
    assert breaker.state(key) == OPEN


def test_success_while_closed_does_not_erase_failures(clock: FakeClock, key: str) -> None:
    breaker = MemoryBreaker(clock=clock)
    breaker.record_failure(key)
    breaker.record_failure(key)
    breaker.record_success(key)
    breaker.record_failure(key)
    assert breaker.state(key) == OPEN


def test_half_open_admits_exactly_one_trial_and_success_closes(clock: FakeClock, key: str) -> None:
    breaker = MemoryBreaker(clock=clock, cooldown=30)
    for _ in range(3):
        breaker.record_failure(key)
    clock.advance(30)
    assert breaker.state(key) == HALF_OPEN
    assert _admit_concurrently(breaker, key, 50) == (1, 0, 49)
    breaker.record_success(key)
    assert breaker.state(key) == CLOSED
    assert _admit_concurrently(breaker, key, 10) == (0, 10, 0)
    breaker.record_failure(key)
    breaker.record_failure(key)
    assert breaker.state(key) == CLOSED  # the history was cleared on closing


def test_trial_failure_reopens_for_a_full_cooldown(clock: FakeClock, key: str) -> None:
    breaker = MemoryBreaker(clock=clock, cooldown=30)
    for _ in range(3):
        breaker.record_failure(key)
    clock.advance(31)
    assert breaker.before_call(key) is True
    clock.advance(2)
    breaker.record_failure(key)
    assert breaker.state(key) == OPEN
    with pytest.raises(CircuitOpenError) as info:
        breaker.before_call(key)
    assert info.value.retry_after == pytest.approx(30.0)
    clock.advance(30)
    assert breaker.before_call(key) is True


def test_results_of_old_calls_are_ignored_while_open(clock: FakeClock, key: str) -> None:
    breaker = MemoryBreaker(clock=clock, cooldown=30)
    for _ in range(3):
        breaker.record_failure(key)
    clock.advance(5)
    breaker.record_success(key)  # a call sent before opening answered late
    assert breaker.state(key) == OPEN
    breaker.record_failure(key)  # and must not extend the cooldown either
    clock.advance(25)
    assert breaker.state(key) == HALF_OPEN


def test_lost_trial_is_replaced_after_its_lease(clock: FakeClock, key: str) -> None:
    breaker = MemoryBreaker(clock=clock, cooldown=30, trial_timeout=60)
    for _ in range(3):
        breaker.record_failure(key)
    clock.advance(30)
    assert breaker.before_call(key) is True  # this caller never reports back
    clock.advance(59)
    with pytest.raises(CircuitOpenError):
        breaker.before_call(key)
    clock.advance(1)
    assert breaker.before_call(key) is True


async def test_async_facade_matches(clock: FakeClock, key: str) -> None:
    breaker = MemoryBreaker(clock=clock, threshold=1, cooldown=5)
    assert await breaker.abefore_call(key) is False
    await breaker.arecord_failure(key)
    assert await breaker.astate(key) == OPEN
    clock.advance(5)
    assert await breaker.abefore_call(key) is True
    await breaker.arecord_success(key)
    assert await breaker.astate(key) == CLOSED


def test_keys_are_independent(clock: FakeClock) -> None:
    breaker = MemoryBreaker(clock=clock, threshold=1)
    breaker.record_failure("tenant-a")
    assert breaker.state("tenant-a") == OPEN
    assert breaker.before_call("tenant-b") is False


@pytest.mark.parametrize(("setting", "value"), [("threshold", 0), ("window", -1), ("cooldown", -0.5)])
def test_settings_are_validated(setting: str, value: float) -> None:
    with pytest.raises(ConfigurationError) as info:
        MemoryBreaker(**{setting: value})
    assert info.value.setting == setting


def test_is_system_error() -> None:
    assert is_system_error("20000", "isp.unknow-error")
    assert is_system_error(20000, None)
    assert is_system_error("40004", "SYSTEM_ERROR")
    assert is_system_error(None, "ACQ.SYSTEM_ERROR")
    assert not is_system_error("40004", "AI.COMPLIANCE_REJECTED")
    assert not is_system_error("40004", "AI.RATE_LIMITED")
    assert not is_system_error("20001", "aop.auth-token-time-out")


# ----------------------------------------------------------------------------------------- redis
def test_redis_opens_and_fails_fast_for_every_instance(redis_url: str, key: str) -> None:
    a, b = RedisBreaker(redis_url), RedisBreaker(redis_url)  # two processes' worth of state
    try:
        a.record_failure(key)
        b.record_failure(key)
        assert a.state(key) == CLOSED
        assert b.before_call(key) is False
        a.record_failure(key)
        assert b.state(key) == OPEN
        with pytest.raises(CircuitOpenError) as info:
            b.before_call(key)
        assert 29.0 < info.value.retry_after <= 30.0
    finally:
        a.close()
        b.close()


def test_redis_half_open_single_trial_then_close(redis_url: str, key: str) -> None:
    a, b = RedisBreaker(redis_url, cooldown=0), RedisBreaker(redis_url, cooldown=0)
    try:
        for _ in range(3):
            a.record_failure(key)
        assert b.state(key) == HALF_OPEN  # cooldown 0: half-open as soon as it opened
        trials, plain, refused = _admit_concurrently(b, key, 40)
        assert (trials, plain, refused) == (1, 0, 40 - 1)
        with pytest.raises(CircuitOpenError):
            a.before_call(key)
        a.record_success(key)
        assert b.state(key) == CLOSED
        assert b.before_call(key) is False
    finally:
        a.close()
        b.close()


def test_redis_trial_failure_reopens_then_cooldown_ends(redis_url: str, key: str) -> None:
    breaker = RedisBreaker(redis_url, threshold=2, cooldown=0.3)
    try:
        breaker.record_failure(key)
        breaker.record_failure(key)
        assert breaker.state(key) == OPEN
        with pytest.raises(CircuitOpenError):
            breaker.before_call(key)
        _wait_for_state(breaker, key, HALF_OPEN)
        assert breaker.before_call(key) is True
        breaker.record_failure(key)
        assert breaker.state(key) == OPEN
        with pytest.raises(CircuitOpenError) as info:
            breaker.before_call(key)
        assert 0 < info.value.retry_after <= 0.3
        _wait_for_state(breaker, key, HALF_OPEN)
        assert breaker.before_call(key) is True
        breaker.record_success(key)
        assert breaker.state(key) == CLOSED
    finally:
        breaker.close()


def test_redis_lost_trial_is_replaced_after_its_lease(redis_url: str, key: str) -> None:
    breaker = RedisBreaker(redis_url, threshold=1, cooldown=0, trial_timeout=0.2)
    try:
        breaker.record_failure(key)
        assert breaker.before_call(key) is True
        with pytest.raises(CircuitOpenError):
            breaker.before_call(key)
        deadline = time.monotonic() + 5
        while True:  # bounded poll until the lease runs out
            try:
                assert breaker.before_call(key) is True
                break
            except CircuitOpenError:
                assert time.monotonic() < deadline, "the lost trial was never replaced"
                time.sleep(0.01)
    finally:
        breaker.close()


def test_redis_window_counts_only_recent_failures(redis_url: str, key: str) -> None:
    breaker = RedisBreaker(redis_url, threshold=2, window=0.2)
    try:
        breaker.record_failure(key)
        recorded_by = _server_now_us(breaker)  # the failure's timestamp is at most this
        deadline = time.monotonic() + 5
        while _server_now_us(breaker) - recorded_by <= 200_000:  # bounded poll, measured by the Redis clock
            assert time.monotonic() < deadline, "the failure never aged out"
            time.sleep(0.01)
        breaker.record_failure(key)
        assert breaker.state(key) == CLOSED
        breaker.record_failure(key)
        assert breaker.state(key) == OPEN
    finally:
        breaker.close()


def _server_now_us(breaker: RedisBreaker) -> int:
    """The Redis server's clock, which the breaker's Lua uses, in microseconds."""
    seconds, micros = breaker._clients.sync().time()
    return int(seconds) * 1_000_000 + int(micros)


async def test_redis_async_single_trial(redis_url: str, key: str) -> None:
    breaker = RedisBreaker(redis_url, threshold=3, cooldown=0)
    try:
        for _ in range(3):
            await breaker.arecord_failure(key)
        assert await breaker.astate(key) == HALF_OPEN

        async def attempt() -> object:
            try:
                return await breaker.abefore_call(key)
            except CircuitOpenError as exc:
                return exc

        outcomes = await asyncio.gather(*(attempt() for _ in range(30)))
        assert sum(1 for o in outcomes if o is True) == 1
        assert sum(1 for o in outcomes if isinstance(o, CircuitOpenError)) == 29
        await breaker.arecord_failure(key)
        assert await breaker.abefore_call(key) is True  # cooldown 0: straight back to one trial
        await breaker.arecord_success(key)
        assert await breaker.astate(key) == CLOSED
    finally:
        await breaker.aclose()


def test_redis_state_keys_expire(redis_url: str, key: str) -> None:
    breaker = RedisBreaker(redis_url, threshold=1, cooldown=1, trial_timeout=2, idle_ttl=3)
    try:
        breaker.record_failure(key)
        ttl = breaker._clients.sync().pttl(f"{breaker.prefix}{{{key}}}:state")
        assert 5_000 < ttl <= 6_001
    finally:
        breaker.close()
