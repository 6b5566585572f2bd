"""The limiter's contract: at most per_second sends in any 1 s window and per_minute in any 60 s window,
full bursts, FIFO, refusal without booking when the wait exceeds the budget — in memory (fake clock) and
in a real Redis shared by threads, coroutines, instances and processes."""

from __future__ import annotations

import asyncio
import json
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
from litellm_alipay.resilience.limiter import (
    MINUTE_US,
    SECOND_US,
    Booking,
    MemoryLimiter,
    RedisLimiter,
    get_limiter,
)

REPO = Path(__file__).resolve().parents[2]


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
def test_burst_then_one_window_later(clock: FakeClock, key: str) -> None:
    limiter = MemoryLimiter(per_second=20, clock=clock)
    delays = [limiter.reserve(key) for _ in range(41)]
    assert delays[:20] == [0.0] * 20
    assert delays[20:40] == [1.0] * 20
    assert delays[40] == 2.0


def test_both_limits_apply_at_once(clock: FakeClock, key: str) -> None:
    limiter = MemoryLimiter(per_second=10, per_minute=15, clock=clock)
    delays = [limiter.reserve(key) for _ in range(16)]
    assert delays[:10] == [0.0] * 10
    assert delays[10:15] == [1.0] * 5  # second limit: 10 more would fit, the minute allows 5
    assert delays[15] == 60.0


def test_keys_are_independent(clock: FakeClock) -> None:
    limiter = MemoryLimiter(per_second=1, clock=clock)
    assert limiter.reserve("a") == 0.0
    assert limiter.reserve("b") == 0.0
    assert limiter.reserve("a") == 1.0


def test_bound_holds_under_threads_and_moving_clock(clock: FakeClock, key: str) -> None:
    limiter = MemoryLimiter(per_second=5, per_minute=40, clock=clock)
    rng = random.Random(7)

    def book(k: str) -> Booking:
        clock.advance(rng.random() * 0.3)  # arrivals at random times, slower and faster than the limit
        return limiter.book(k)

    bookings = _book_in_threads(book, key, threads=8, per_thread=25)
    times = [b.send_at_us for b in bookings]
    assert len(times) == 200
    assert max_in_window(times, SECOND_US) == 5  # never more, and the limit is reached (not over-strict)
    assert max_in_window(times, MINUTE_US) == 40
    assert all(b.send_at_us >= b.now_us for b in bookings)


def test_fifo_and_no_idle_gaps(clock: FakeClock, key: str) -> None:
    """Bookings come out in arrival order and each is the earliest the bounds allow."""
    limiter = MemoryLimiter(per_second=3, clock=clock)
    slots = []
    for _ in range(9):
        slots.append(limiter.book(key).send_at_us)
        clock.advance(0.1)
    base = slots[0]
    assert [s - base for s in slots] == [0, 100_000, 200_000, 1_000_000, 1_100_000, 1_200_000,
                                         2_000_000, 2_100_000, 2_200_000]


def test_refused_when_wait_exceeds_budget_and_nothing_booked(clock: FakeClock, key: str) -> None:
    limiter = MemoryLimiter(per_second=1, clock=clock)
    assert limiter.reserve(key, max_wait=0) == 0.0
    with pytest.raises(QuotaExceededError) as info:
        limiter.reserve(key, max_wait=0.5)
    assert info.value.retry_after == 1.0
    assert info.value.max_wait == 0.5
    assert info.value.key == key
    # Had the refused request booked, this one would wait 2 s.
    assert limiter.reserve(key, max_wait=1.0) == 1.0


def test_acquire_sleeps_the_delay(key: str) -> None:
    limiter = MemoryLimiter(per_second=10)
    start = time.monotonic()
    waits = [limiter.acquire(key, max_wait=5) for _ in range(11)]
    elapsed = time.monotonic() - start
    assert waits[:10] == [0.0] * 10
    assert 0.9 < waits[10] <= 1.0
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
    assert sum(1 for t in sent if t < start + 0.999) == 10
    assert max(sent) - start >= 0.999


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_limits_are_validated(bad: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        MemoryLimiter(per_second=bad)  # type: ignore[arg-type]
    assert info.value.setting == "per_second"


def test_no_limits_means_no_wait(clock: FakeClock, key: str) -> None:
    limiter = MemoryLimiter(clock=clock)
    assert [limiter.reserve(key, max_wait=0) for _ in range(100)] == [0.0] * 100


def test_registry_shares_one_instance_per_configuration() -> None:
    a = get_limiter(None, 7, 100)
    assert get_limiter(None, 7, 100) is a
    assert isinstance(a, MemoryLimiter)
    assert get_limiter(None, 7, 99) is not a
    r = get_limiter("redis://127.0.0.1:1/0", 7, 100)
    assert isinstance(r, RedisLimiter)  # created lazily: no connection attempted here
    assert get_limiter("redis://127.0.0.1:1/0", 7, 100) is r


def test_idle_keys_are_pruned(clock: FakeClock) -> None:
    limiter = MemoryLimiter(per_second=1, clock=clock)
    limiter._PRUNE_ABOVE = 3  # type: ignore[misc]
    for name in ("a", "b", "c"):
        limiter.reserve(name)
    clock.advance(1.0)
    limiter.reserve("d")  # 4 keys > 3: a, b, c are idle and go
    assert sorted(limiter._logs) == ["d"]
    assert limiter.reserve("a") == 0.0


# ----------------------------------------------------------------------------------------- redis
def test_redis_bound_under_threads(redis_url: str, key: str) -> None:
    limiter = RedisLimiter(redis_url, per_second=20, per_minute=70)
    try:
        bookings = _book_in_threads(limiter.book, key, threads=16, per_thread=5)
    finally:
        limiter.close()
    times = [b.send_at_us for b in bookings]
    assert len(times) == 80
    assert max_in_window(times, SECOND_US) == 20
    assert max_in_window(times, MINUTE_US) == 70
    assert sum(1 for b in bookings if b.delay == 0) == 20
    assert sum(1 for b in bookings if b.delay >= 59) == 10  # the per-minute limit pushed 10 out a minute


async def test_redis_bound_under_coroutines(redis_url: str, key: str) -> None:
    limiter = RedisLimiter(redis_url, per_second=10, per_minute=25)
    try:
        bookings = await asyncio.gather(*(limiter.abook(key) for _ in range(40)))
    finally:
        await limiter.aclose()
    times = [b.send_at_us for b in bookings]
    assert max_in_window(times, SECOND_US) == 10
    assert max_in_window(times, MINUTE_US) == 25
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
    assert max_in_window(times, SECOND_US) == 20


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
    assert max_in_window(times, SECOND_US) == 20
    assert max(times) - min(times) >= 2 * SECOND_US  # 60 sends at 20/s span at least 2 s


def test_redis_refusal_books_nothing(redis_url: str, key: str) -> None:
    limiter = RedisLimiter(redis_url, per_second=1)
    try:
        first = limiter.book(key, max_wait=0)
        assert first.delay == 0
        with pytest.raises(QuotaExceededError) as info:
            limiter.book(key, max_wait=0.5)
        assert 0.5 < info.value.retry_after <= 1.0
        second = limiter.book(key, max_wait=None)
        assert second.send_at_us == first.send_at_us + SECOND_US  # +2 s had the refusal booked
    finally:
        limiter.close()


def test_redis_keys_expire(redis_url: str, key: str) -> None:
    limiter = RedisLimiter(redis_url, per_second=2, per_minute=3)
    client = redis.Redis.from_url(redis_url)
    try:
        limiter.book(key)
        sec_ttl = client.pttl(f"litellm_alipay:rl:{{{key}}}:{SECOND_US}")
        min_ttl = client.pttl(f"litellm_alipay:rl:{{{key}}}:{MINUTE_US}")
        assert 0 < sec_ttl <= 1001
        assert 59_000 < min_ttl <= 60_001
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
    # Sends happen at or after their booked times: at most 20 before start + 1 s (1 ms clock slack).
    assert sum(1 for t in sent if t < start + 0.999) <= 20
    assert max(sent) - start >= 0.999


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
    assert sum(1 for t in sent if t < start + 0.999) <= 20
    assert max(sent) - start >= 0.999


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
    assert fourth.send_at_us == here.send_at_us + SECOND_US
