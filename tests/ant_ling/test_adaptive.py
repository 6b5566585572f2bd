"""The "Slow Down" pacer, driven by a fake clock (no sleeping)."""

import pytest

from litellm_alipay.errors import QuotaExceededError
from litellm_alipay.resilience.adaptive import WINDOW, AdaptivePacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sent_at(pacer: AdaptivePacer, clock: Clock, per_second: int, seconds: float) -> None:
    for _ in range(int(per_second * seconds)):
        pacer._book("k", None)
        clock.now += 1 / per_second


def test_unpaced_until_the_first_slow_down():
    clock = Clock()
    pacer = AdaptivePacer(hold=60, ramp=120, factor=0.5, clock=clock)
    assert pacer.rate("k") is None
    assert all(pacer._book("k", 0) == 0 for _ in range(100))


def test_slow_down_halves_the_measured_rate_holds_then_ramps_back():
    clock = Clock()
    pacer = AdaptivePacer(hold=60, ramp=120, factor=0.5, clock=clock)
    sent_at(pacer, clock, 10, WINDOW)
    floor = pacer.slow_down("k")
    assert floor == pytest.approx(5.0, rel=0.05)
    clock.now += 59
    assert pacer.rate("k") == floor  # held flat
    clock.now += 1 + 60  # half way up the ramp
    assert pacer.rate("k") == pytest.approx((floor + 10.0) / 2, rel=0.05)
    clock.now += 61
    assert pacer.rate("k") is None  # recovered


def test_requests_are_spaced_at_the_allowed_rate_and_refused_past_their_budget():
    clock = Clock()
    pacer = AdaptivePacer(hold=60, ramp=120, factor=0.5, min_rate=1.0, clock=clock)
    pacer.slow_down("k")  # nothing measured: the minimum rate
    assert pacer.rate("k") == 1.0
    waits = [pacer._book("k", 10) for _ in range(3)]
    assert waits == [0.0, 1.0, 2.0]
    with pytest.raises(QuotaExceededError):
        pacer._book("k", 0.5)


def test_a_second_slow_down_tightens_further():
    clock = Clock()
    pacer = AdaptivePacer(hold=60, ramp=120, factor=0.5, min_rate=0.2, clock=clock)
    sent_at(pacer, clock, 8, WINDOW)
    first = pacer.slow_down("k")
    second = pacer.slow_down("k")
    assert second < first and second >= 0.2
    assert pacer.rate("other") is None  # per key


def test_redis_pacing_is_shared_between_instances(redis_url):
    import uuid

    from litellm_alipay.resilience.adaptive import RedisPacer

    key = f"ant-ling:{uuid.uuid4().hex[:12]}"
    here, there = RedisPacer(redis_url, hold=60, ramp=60), RedisPacer(redis_url, hold=60, ramp=60)
    assert there.rate(key) is None
    here.acquire(key, max_wait=0)  # unpaced: no wait
    floor = here.slow_down(key)
    assert there.rate(key) == pytest.approx(floor) and floor == pytest.approx(0.2)
    there.acquire(key, max_wait=0)  # the first slot is free
    with pytest.raises(QuotaExceededError):
        here.acquire(key, max_wait=1.0)  # the next one is 1/0.2 = 5 s away, for every instance


async def test_redis_pacing_async(redis_url):
    import uuid

    from litellm_alipay.resilience.adaptive import RedisPacer

    key = f"ant-ling:{uuid.uuid4().hex[:12]}"
    pacer = RedisPacer(redis_url, hold=60, ramp=60)
    await pacer.aacquire(key, max_wait=0)
    assert await pacer.aslow_down(key) == pytest.approx(0.2)
    await pacer.aacquire(key, max_wait=0)
    with pytest.raises(QuotaExceededError):
        await pacer.aacquire(key, max_wait=1.0)
