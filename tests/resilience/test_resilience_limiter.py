"""The limiter's contract: at most per_second sends in any 1 s + guard window and per_minute in any
60 s + guard window (exactly: one more fits in a window 1 µs longer), full bursts, FIFO, refusal without
booking when the wait exceeds the budget — in memory (fake clock) and in a real Redis shared by threads,
coroutines, instances and processes. ``guard=0`` pins the unguarded bound; the default guard is 0.1 s."""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from resilience_helpers import FakeClock, max_in_window

from litellm_alipay.errors import ConfigurationError, QuotaExceededError
from litellm_alipay.resilience.guards import Guards
from litellm_alipay.resilience.limiter import (
    DEFAULT_GUARD,
    MINUTE_US,
    SECOND_US,
    Booking,
    MemoryLimiter,
    RedisLimiter,
    get_limiter,
)
from litellm_alipay.settings import build_settings
from litellm_alipay.wire.signing import generate_private_key, private_key_forms

REPO = Path(__file__).resolve().parents[2]
GUARD_US = 100_000  # DEFAULT_GUARD in microseconds


def _book_in_threads(book, key: str, threads: int, per_thread: int) -> list[Booking]:
    """Book from many threads started together; returns every booking."""
    out: list[Booking] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def worker() -> None:
        barrier.wait(timeout=10)
        for _ in range(per_thread):
            booking = book(key)
            with lock:
                out.append(booking)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in pool)
    return out


# ---------------------------------------------------------------------------------------- memory
def test_burst_then_one_window_later_without_guard(clock: FakeClock, key: str) -> None:
    limiter = MemoryLimiter(per_second=20, guard=0, clock=clock)
    delays = [limiter.reserve(key) for _ in range(41)]
    assert delays[:20] == [0.0] * 20
    assert delays[20:40] == [1.0] * 20
    assert delays[40] == 2.0


def test_default_guard_spaces_bursts_one_window_plus_guard_apart(clock: FakeClock, key: str) -> None:
    limiter = MemoryLimiter(per_second=20, clock=clock)
    assert limiter.guard == DEFAULT_GUARD == 0.1
    delays = [limiter.reserve(key) for _ in range(41)]
    assert delays[:20] == [0.0] * 20
    assert delays[20:40] == [1.1] * 20
    assert delays[40] == 2.2


def test_both_limits_apply_at_once(clock: FakeClock, key: str) -> None:
    limiter = MemoryLimiter(per_second=10, per_minute=15, guard=0, clock=clock)
    delays = [limiter.reserve(key) for _ in range(16)]
    assert delays[:10] == [0.0] * 10
    assert delays[10:15] == [1.0] * 5  # second limit: 10 more would fit, the minute allows 5
    assert delays[15] == 60.0


def test_guard_applies_to_both_windows(clock: FakeClock, key: str) -> None:
    limiter = MemoryLimiter(per_second=10, per_minute=15, guard=0.25, clock=clock)
    delays = [limiter.reserve(key) for _ in range(16)]
    assert delays[:10] == [0.0] * 10
    assert delays[10:15] == [1.25] * 5
    assert delays[15] == 60.25


def test_keys_are_independent(clock: FakeClock) -> None:
    limiter = MemoryLimiter(per_second=1, clock=clock)
    assert limiter.reserve("a") == 0.0
    assert limiter.reserve("b") == 0.0
    assert limiter.reserve("a") == 1.1


@pytest.mark.parametrize("guard", [0, 0.1, 0.35])
def test_bound_holds_under_threads_and_moving_clock(clock: FakeClock, key: str, guard: float) -> None:
    limiter = MemoryLimiter(per_second=5, per_minute=40, guard=guard, clock=clock)
    guard_us = round(guard * 1_000_000)
    rng = random.Random(7)

    def book(k: str) -> Booking:
        clock.advance(rng.random() * 0.3)  # arrivals at random times, slower and faster than the limit
        return limiter.book(k)

    bookings = _book_in_threads(book, key, threads=8, per_thread=25)
    times = [b.send_at_us for b in bookings]
    assert len(times) == 200
    # Never more than the limit in a window + guard, and the bound is exact: one µs more holds one more.
    assert max_in_window(times, SECOND_US + guard_us) == 5
    assert max_in_window(times, SECOND_US + guard_us + 1) == 6
    assert max_in_window(times, MINUTE_US + guard_us) == 40
    assert max_in_window(times, MINUTE_US + guard_us + 1) == 41
    assert all(b.send_at_us >= b.now_us for b in bookings)


def test_fifo_and_no_idle_gaps(clock: FakeClock, key: str) -> None:
    """Bookings come out in arrival order and each is the earliest the bounds allow."""
    limiter = MemoryLimiter(per_second=3, guard=0, clock=clock)
    slots = []
    for _ in range(9):
        slots.append(limiter.book(key).send_at_us)
        clock.advance(0.1)
    base = slots[0]
    assert [s - base for s in slots] == [0, 100_000, 200_000, 1_000_000, 1_100_000, 1_200_000,
                                         2_000_000, 2_100_000, 2_200_000]


def test_fifo_and_no_idle_gaps_with_guard(clock: FakeClock, key: str) -> None:
    limiter = MemoryLimiter(per_second=3, clock=clock)
    slots = []
    for _ in range(9):
        slots.append(limiter.book(key).send_at_us)
        clock.advance(0.1)
    base = slots[0]
    assert [s - base for s in slots] == [0, 100_000, 200_000, 1_100_000, 1_200_000, 1_300_000,
                                         2_200_000, 2_300_000, 2_400_000]


def test_refused_when_wait_exceeds_budget_and_nothing_booked(clock: FakeClock, key: str) -> None:
    limiter = MemoryLimiter(per_second=1, clock=clock)
    assert limiter.reserve(key, max_wait=0) == 0.0
    with pytest.raises(QuotaExceededError) as info:
        limiter.reserve(key, max_wait=1.0)
    assert info.value.retry_after == 1.1
    assert info.value.max_wait == 1.0
    assert info.value.key == key
    # Had the refused request booked, this one would wait 2.2 s.
    assert limiter.reserve(key, max_wait=1.1) == 1.1


def test_acquire_sleeps_the_delay(key: str) -> None:
    limiter = MemoryLimiter(per_second=10)
    start = time.monotonic()
    waits = [limiter.acquire(key, max_wait=5) for _ in range(11)]
    elapsed = time.monotonic() - start
    assert waits[:10] == [0.0] * 10
    assert 1.0 < waits[10] <= 1.1
    assert elapsed >= waits[10]


async def test_aacquire_paces_coroutines(key: str) -> None:
    limiter = MemoryLimiter(per_second=10)
    start = time.monotonic()
    sent: list[float] = []

    async def one() -> None:
        await limiter.aacquire(key, max_wait=5)
        sent.append(time.monotonic())

    await asyncio.gather(*(one() for _ in range(15)))
    assert len(sent) == 15
    assert sum(1 for t in sent if t < start + 1.099) == 10
    assert max(sent) - start >= 1.099


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_limits_are_validated(bad: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        MemoryLimiter(per_second=bad)  # type: ignore[arg-type]
    assert info.value.setting == "per_second"


@pytest.mark.parametrize("bad", [-0.001, math.nan, math.inf, True, "0.1", None])
@pytest.mark.parametrize("cls", [MemoryLimiter, RedisLimiter])
def test_guard_is_validated(cls: type, bad: object) -> None:
    args = ("redis://127.0.0.1:1/0",) if cls is RedisLimiter else ()
    with pytest.raises(ConfigurationError) as info:
        cls(*args, per_second=5, guard=bad)
    assert info.value.setting == "guard"


def _settings(given: dict, env: dict[str, str] | None = None):
    key = private_key_forms(generate_private_key())["private_pkcs8"]
    base = {"ALIPAY_APP_ID": "2021000000000001", "ALIPAY_APP_PRIVATE_KEY": key, "ALIPAY_VERIFY_RESPONSE": "false"}
    return build_settings(given, {**base, **(env or {})})


def test_rate_limit_guard_setting_reaches_the_limiter() -> None:
    assert _settings({}).rate_limit_guard == 0.1
    assert _settings({"rate_limit_guard": ""}).rate_limit_guard == 0.1
    assert _settings({}, {"ALIPAY_RATE_LIMIT_GUARD": "0.25"}).rate_limit_guard == 0.25
    assert _settings({"rate_limit_guard": 0}, {"ALIPAY_RATE_LIMIT_GUARD": "0.25"}).rate_limit_guard == 0.0
    limited = _settings({"rate_limit_per_second": 9, "rate_limit_guard": "0.3"})
    limiter = Guards(limited).limiter
    assert isinstance(limiter, MemoryLimiter)
    assert (limiter.per_second, limiter.guard_us) == (9, 300_000)
    assert Guards(_settings({"rate_limit_per_second": 9})).limiter.guard_us == 100_000


@pytest.mark.parametrize("bad", ["-0.1", "nan", "inf", "soon", -1])
def test_rate_limit_guard_setting_is_validated(bad: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        _settings({"rate_limit_guard": bad})
    assert info.value.setting == "rate_limit_guard"
    with pytest.raises(ConfigurationError) as info:
        _settings({}, {"ALIPAY_RATE_LIMIT_GUARD": str(bad)})
    assert info.value.setting == "rate_limit_guard"


def test_no_limits_means_no_wait(clock: FakeClock, key: str) -> None:
    limiter = MemoryLimiter(clock=clock)
    assert [limiter.reserve(key, max_wait=0) for _ in range(100)] == [0.0] * 100


def test_registry_shares_one_instance_per_configuration() -> None:
    a = get_limiter(None, 7, 100)
    assert get_limiter(None, 7, 100) is a
    assert get_limiter(None, 7, 100, DEFAULT_GUARD) is a
    assert isinstance(a, MemoryLimiter)
    assert a.guard == DEFAULT_GUARD
    assert get_limiter(None, 7, 99) is not a
    g = get_limiter(None, 7, 100, 0.2)
    assert g is not a and g.guard == 0.2
    assert get_limiter(None, 7, 100, 0.2) is g
    r = get_limiter("redis://127.0.0.1:1/0", 7, 100)
    assert isinstance(r, RedisLimiter)  # created lazily: no connection attempted here
    assert get_limiter("redis://127.0.0.1:1/0", 7, 100) is r
    r0 = get_limiter("redis://127.0.0.1:1/0", 7, 100, 0)
    assert r0 is not r and isinstance(r0, RedisLimiter) and r0.guard_us == 0


def test_idle_keys_are_pruned(clock: FakeClock) -> None:
    limiter = MemoryLimiter(per_second=1, clock=clock)
    limiter._PRUNE_ABOVE = 3  # type: ignore[misc]
    for name in ("a", "b", "c"):
        limiter.reserve(name)
    clock.advance(1.0)
    limiter.reserve("d")  # 4 keys > 3, but a, b, c still constrain for the guard
    assert sorted(limiter._logs) == ["a", "b", "c", "d"]
    clock.advance(0.1)
    limiter.reserve("e")  # window + guard over: a, b, c are idle and go; d is not
    assert sorted(limiter._logs) == ["d", "e"]
    assert limiter.reserve("a") == 0.0
    assert limiter.reserve("d") == 1.0  # booked 0.1 s ago: 1.1 s after it


# ----------------------------------------------------------------------------------------- redis
@pytest.mark.parametrize("guard", [0, 0.1])
def test_redis_bound_under_threads(redis_url: str, key: str, guard: float) -> None:
    limiter = RedisLimiter(redis_url, per_second=20, per_minute=70, guard=guard)
    guard_us = round(guard * 1_000_000)
    try:
        bookings = _book_in_threads(limiter.book, key, threads=16, per_thread=5)
    finally:
        limiter.close()
    times = sorted(b.send_at_us for b in bookings)
    assert len(times) == 80
    assert max_in_window(times, SECOND_US + guard_us) == 20
    assert max_in_window(times, SECOND_US + guard_us + 1) == 21  # exact: the 21st is window + guard later
    assert times[20] - times[0] == SECOND_US + guard_us
    assert max_in_window(times, MINUTE_US + guard_us) == 70
    assert times[70] - times[0] == MINUTE_US + guard_us
    assert sum(1 for b in bookings if b.delay == 0) == 20
    assert sum(1 for b in bookings if b.delay >= 59) == 10  # the per-minute limit pushed 10 out a minute


async def test_redis_bound_under_coroutines(redis_url: str, key: str) -> None:
    limiter = RedisLimiter(redis_url, per_second=10, per_minute=25, guard=0.25)
    try:
        bookings = await asyncio.gather(*(limiter.abook(key) for _ in range(40)))
    finally:
        await limiter.aclose()
    times = sorted(b.send_at_us for b in bookings)
    assert max_in_window(times, SECOND_US + 250_000) == 10
    assert max_in_window(times, SECOND_US + 250_000 + 1) == 11
    assert max_in_window(times, MINUTE_US + 250_000) == 25
    assert times[25] - times[0] == MINUTE_US + 250_000
    assert sum(1 for b in bookings if b.delay == 0) == 10  # the burst goes at once, the rest waits


def test_two_instances_share_one_budget(redis_url: str, key: str) -> None:
    """Two limiters = two processes' worth of state: only Redis connects them."""
    first, second = RedisLimiter(redis_url, per_second=20), RedisLimiter(redis_url, per_second=20)
    flip = iter(range(10_000))

    def book(k: str) -> Booking:
        return (first if next(flip) % 2 else second).book(k)

    try:
        bookings = _book_in_threads(book, key, threads=8, per_thread=8)
    finally:
        first.close()
        second.close()
    times = [b.send_at_us for b in bookings]
    assert len(times) == 64
    assert max_in_window(times, SECOND_US + GUARD_US) == 20
    assert max_in_window(times, SECOND_US + GUARD_US + 1) == 21


def test_two_processes_share_one_budget(redis_url: str, key: str) -> None:
    code = (
        "import json, sys\n"
        "from litellm_alipay.resilience.limiter import RedisLimiter\n"
        "lim = RedisLimiter(sys.argv[1], per_second=20)\n"
        "print(json.dumps([lim.book(sys.argv[2]).send_at_us for _ in range(30)]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, redis_url, key], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, cwd=REPO)
        for _ in range(2)
    ]
    times: list[int] = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        times += json.loads(out)
    assert len(times) == 60
    assert max_in_window(times, SECOND_US + GUARD_US) == 20
    assert max(times) - min(times) >= 2 * (SECOND_US + GUARD_US)  # 60 sends at 20 per 1.1 s span ≥ 2.2 s


def test_redis_refusal_books_nothing(redis_url: str, key: str) -> None:
    limiter = RedisLimiter(redis_url, per_second=1)
    try:
        first = limiter.book(key, max_wait=0)
        assert first.delay == 0
        with pytest.raises(QuotaExceededError) as info:
            limiter.book(key, max_wait=0.5)
        assert 1.0 < info.value.retry_after <= 1.1  # window + guard after the first booking
        second = limiter.book(key, max_wait=None)
        assert second.send_at_us == first.send_at_us + SECOND_US + GUARD_US  # +2.2 s had the refusal booked
    finally:
        limiter.close()


def test_redis_keys_expire(redis_url: str, key: str) -> None:
    limiter = RedisLimiter(redis_url, per_second=2, per_minute=3)
    client = redis.Redis.from_url(redis_url)
    try:
        limiter.book(key)
        sec_ttl = client.pttl(f"litellm_alipay:rl:{{{key}}}:{SECOND_US}")
        min_ttl = client.pttl(f"litellm_alipay:rl:{{{key}}}:{MINUTE_US}")
        assert 1_000 < sec_ttl <= 1_101  # until window + guard (+1 ms rounding)
        assert 60_000 < min_ttl <= 60_101
        for _ in range(5):
            limiter.book(key)
        assert client.llen(f"litellm_alipay:rl:{{{key}}}:{SECOND_US}") == 2  # trimmed to the limit
        assert client.llen(f"litellm_alipay:rl:{{{key}}}:{MINUTE_US}") == 3
    finally:
        limiter.close()
        client.close()


def test_redis_acquire_really_waits(redis_url: str, key: str) -> None:
    limiter = RedisLimiter(redis_url, per_second=20)
    sent: list[float] = []
    lock = threading.Lock()
    start = time.time()

    def book(k: str) -> Booking:
        limiter.acquire(k, max_wait=10)
        with lock:
            sent.append(time.time())
        return Booking(0, 0)

    try:
        _book_in_threads(book, key, threads=10, per_thread=3)
    finally:
        limiter.close()
    assert len(sent) == 30
    # Sends happen at or after their booked times: at most 20 before start + 1.1 s (1 ms clock slack).
    assert sum(1 for t in sent if t < start + 1.099) <= 20
    assert max(sent) - start >= 1.099


async def test_redis_aacquire_really_waits(redis_url: str, key: str) -> None:
    limiter = RedisLimiter(redis_url, per_second=20)
    sent: list[float] = []
    start = time.time()

    async def one() -> None:
        await limiter.aacquire(key, max_wait=10)
        sent.append(time.time())

    try:
        await asyncio.gather(*(one() for _ in range(30)))
    finally:
        await limiter.aclose()
    assert len(sent) == 30
    assert sum(1 for t in sent if t < start + 1.099) <= 20
    assert max(sent) - start >= 1.099


async def test_redis_aacquire_refuses_over_budget(redis_url: str, key: str) -> None:
    limiter = RedisLimiter(redis_url, per_second=2)
    try:
        assert [await limiter.areserve(key, max_wait=0) for _ in range(2)] == [0.0, 0.0]
        with pytest.raises(QuotaExceededError):
            await limiter.aacquire(key, max_wait=0.1)
    finally:
        await limiter.aclose()


async def test_one_limiter_serves_two_event_loops(redis_url: str, key: str) -> None:
    """The async client is per loop: a second loop in another thread must get its own, same budget."""
    limiter = RedisLimiter(redis_url, per_second=3)

    async def in_other_loop() -> Booking:
        try:
            return await limiter.abook(key)
        finally:
            await limiter.aclose()

    try:
        here = await limiter.abook(key)
        there = await asyncio.to_thread(lambda: asyncio.run(in_other_loop()))
        again = await limiter.abook(key)
        fourth = await limiter.abook(key)
    finally:
        await limiter.aclose()
    assert [here.delay, there.delay, again.delay] == [0.0, 0.0, 0.0]
    assert fourth.send_at_us == here.send_at_us + SECOND_US + GUARD_US
