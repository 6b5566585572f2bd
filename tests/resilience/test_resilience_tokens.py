"""The token manager: one exchange however many callers, background refresh inside the window, inline
refresh when expired, retry once after 20001, failures propagate — with a fake clock and asyncio events,
never sleeps."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

import pytest
from resilience_helpers import FakeClock

from litellm_alipay.errors import ConfigurationError, ProtocolError
from litellm_alipay.resilience.tokens import TokenManager, parse_token


class FakeOAuth:
    """An ``exchange`` that records its calls, can be held at a gate, and can be told to fail."""

    def __init__(self, expires_in: object = 7200, re_expires_in: object = 2_592_000) -> None:
        self.calls: list[tuple[str, str]] = []
        self.expires_in = expires_in
        self.re_expires_in = re_expires_in
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.fail_with: Exception | None = None

    async def __call__(self, grant_type: str, value: str) -> Mapping[str, Any]:
        self.calls.append((grant_type, value))
        n = len(self.calls)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return {"access_token": f"at-{n}", "expires_in": self.expires_in, "refresh_token": f"rt-{n}",
                "re_expires_in": self.re_expires_in, "user_id": 2088000000000000 + n}


class TokenExpired(Exception):
    """Shaped like the adapter's mapped 20001 error: only ``sub_code`` matters."""

    def __init__(self, sub_code: str = "aop.auth-token-time-out") -> None:
        super().__init__(sub_code)
        self.sub_code = sub_code


async def _drain(predicate, rounds: int = 200) -> None:
    """Let the loop run (bounded) until ``predicate()``: background tasks finish without sleeping."""
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def test_hundred_concurrent_callers_one_exchange(clock: FakeClock) -> None:
    oauth = FakeOAuth()
    oauth.gate = asyncio.Event()
    manager = TokenManager(oauth, clock=clock)
    waiters = [asyncio.create_task(manager.get_token("u1", auth_code="code-1")) for _ in range(100)]
    await oauth.entered.wait()
    await _drain(lambda: all(not w.done() for w in waiters) and len(oauth.calls) == 1)
    oauth.gate.set()
    tokens = await asyncio.gather(*waiters)
    assert tokens == ["at-1"] * 100
    assert oauth.calls == [("authorization_code", "code-1")]
    assert await manager.get_token("u1") == "at-1"  # cached: no code needed any more
    assert len(oauth.calls) == 1
    cached = manager.cached("u1")
    assert cached is not None and cached.user_id == "2088000000000001"


async def test_numbers_as_strings_are_read(clock: FakeClock) -> None:
    oauth = FakeOAuth(expires_in="3600", re_expires_in="86400")
    manager = TokenManager(oauth, clock=clock)
    await manager.get_token("u1", auth_code="c")
    cached = manager.cached("u1")
    assert cached is not None
    assert cached.expires_at == clock.now + 3600
    assert cached.refresh_expires_at == clock.now + 86400


async def test_background_refresh_inside_the_window(clock: FakeClock) -> None:
    oauth = FakeOAuth(expires_in=7200)
    manager = TokenManager(oauth, clock=clock)  # refresh_window 1800 s
    assert await manager.get_token("u1", auth_code="c") == "at-1"
    clock.advance(7200 - 1801)
    assert await manager.get_token("u1") == "at-1"
    assert len(oauth.calls) == 1  # outside the window: no refresh
    clock.advance(2)  # 1799 s left: inside the window
    oauth.gate = asyncio.Event()
    oauth.entered = asyncio.Event()
    # Every caller gets the still-valid token at once; one refresh runs behind them.
    assert await asyncio.gather(*(manager.get_token("u1") for _ in range(50))) == ["at-1"] * 50
    await oauth.entered.wait()
    assert oauth.calls == [("authorization_code", "c"), ("refresh_token", "rt-1")]
    oauth.gate.set()
    await _drain(lambda: manager.cached("u1") is not None and manager.cached("u1").access_token == "at-2")
    assert await manager.get_token("u1") == "at-2"
    assert len(oauth.calls) == 2


async def test_expired_token_is_refreshed_inline(clock: FakeClock) -> None:
    oauth = FakeOAuth(expires_in=7200)
    manager = TokenManager(oauth, clock=clock)
    await manager.get_token("u1", auth_code="c")
    clock.advance(7200)
    assert await asyncio.gather(*(manager.get_token("u1") for _ in range(20))) == ["at-2"] * 20
    assert oauth.calls == [("authorization_code", "c"), ("refresh_token", "rt-1")]


async def test_inline_refresh_failure_propagates_to_every_waiter(clock: FakeClock) -> None:
    oauth = FakeOAuth()
    manager = TokenManager(oauth, clock=clock)
    await manager.get_token("u1", auth_code="c")
    clock.advance(8000)
    oauth.fail_with = RuntimeError("invalid refresh token")
    results = await asyncio.gather(*(manager.get_token("u1") for _ in range(10)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and str(r) == "invalid refresh token" for r in results)
    assert len(oauth.calls) == 2  # one failed refresh, shared
    oauth.fail_with = None
    assert await manager.get_token("u1") == "at-3"  # the next call tries again


async def test_background_refresh_failure_keeps_token_and_backs_off(clock: FakeClock) -> None:
    oauth = FakeOAuth(expires_in=7200)
    manager = TokenManager(oauth, clock=clock, retry_backoff=30)
    await manager.get_token("u1", auth_code="c")
    clock.advance(7000)
    oauth.fail_with = RuntimeError("gateway down")
    assert await manager.get_token("u1") == "at-1"
    await _drain(lambda: "u1" in manager._background_not_before)
    assert await manager.get_token("u1") == "at-1"
    assert len(oauth.calls) == 2  # backing off: no new attempt
    clock.advance(30)
    oauth.fail_with = None
    assert await manager.get_token("u1") == "at-1"
    await _drain(lambda: manager.cached("u1").access_token == "at-3")
    assert len(oauth.calls) == 3


async def test_short_lived_token_window_is_halved(clock: FakeClock) -> None:
    oauth = FakeOAuth(expires_in=600)
    manager = TokenManager(oauth, clock=clock)
    await manager.get_token("u1", auth_code="c")
    clock.advance(299)
    await manager.get_token("u1")
    assert len(oauth.calls) == 1  # a 1800 s window would refresh a 600 s token on every call
    clock.advance(2)
    await manager.get_token("u1")
    await _drain(lambda: len(oauth.calls) == 2)


async def test_with_token_retry_refreshes_once_after_20001(clock: FakeClock) -> None:
    oauth = FakeOAuth()
    manager = TokenManager(oauth, clock=clock)
    seen: list[str] = []

    async def call(token: str) -> str:
        seen.append(token)
        if len(seen) == 1:
            raise TokenExpired()
        return f"ok with {token}"

    assert await manager.with_token_retry("u1", call, auth_code="c") == "ok with at-2"
    assert seen == ["at-1", "at-2"]
    assert oauth.calls == [("authorization_code", "c"), ("refresh_token", "rt-1")]


async def test_with_token_retry_retries_only_once(clock: FakeClock) -> None:
    oauth = FakeOAuth()
    manager = TokenManager(oauth, clock=clock)
    calls = 0

    async def call(token: str) -> str:
        nonlocal calls
        calls += 1
        raise TokenExpired("aop.invalid-auth-token")

    with pytest.raises(TokenExpired):
        await manager.with_token_retry("u1", call, auth_code="c")
    assert calls == 2
    assert len(oauth.calls) == 2


async def test_with_token_retry_leaves_other_errors_alone(clock: FakeClock) -> None:
    oauth = FakeOAuth()
    manager = TokenManager(oauth, clock=clock)

    async def call(token: str) -> str:
        raise TokenExpired("isv.invalid-signature")

    with pytest.raises(TokenExpired):
        await manager.with_token_retry("u1", call, auth_code="c")
    assert len(oauth.calls) == 1


async def test_with_token_retry_refresh_failure_propagates(clock: FakeClock) -> None:
    oauth = FakeOAuth()
    manager = TokenManager(oauth, clock=clock)
    calls = 0

    async def call(token: str) -> str:
        nonlocal calls
        calls += 1
        oauth.fail_with = PermissionError("refresh token revoked")
        raise TokenExpired()

    with pytest.raises(PermissionError, match="refresh token revoked"):
        await manager.with_token_retry("u1", call, auth_code="c")
    assert calls == 1


async def test_stale_invalidation_does_not_discard_a_fresh_token(clock: FakeClock) -> None:
    oauth = FakeOAuth()
    manager = TokenManager(oauth, clock=clock)
    old = await manager.get_token("u1", auth_code="c")
    manager.invalidate("u1", old)
    new = await manager.get_token("u1")
    manager.invalidate("u1", old)  # a second caller that failed with the same old token
    assert await manager.get_token("u1") == new
    assert len(oauth.calls) == 2


async def test_without_token_or_means_is_a_configuration_error(clock: FakeClock) -> None:
    manager = TokenManager(FakeOAuth(), clock=clock)
    with pytest.raises(ConfigurationError) as info:
        await manager.get_token("nobody")
    assert info.value.setting == "auth_code"


async def test_caller_refresh_token_is_used_when_nothing_cached(clock: FakeClock) -> None:
    oauth = FakeOAuth()
    manager = TokenManager(oauth, clock=clock)
    assert await manager.get_token("u1", refresh_token="stored-rt") == "at-1"
    assert oauth.calls == [("refresh_token", "stored-rt")]


@pytest.mark.parametrize(
    "raw",
    [{"expires_in": 10}, {"access_token": "a"}, {"access_token": "a", "expires_in": "soon"},
     {"access_token": "a", "expires_in": -5}],
)
def test_malformed_answers_are_protocol_errors(raw: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        parse_token(raw, issued_at=0.0)


def test_sync_facade_single_flight_across_threads(clock: FakeClock) -> None:
    release = threading.Event()
    calls: list[tuple[str, str]] = []

    async def exchange(grant_type: str, value: str) -> Mapping[str, Any]:
        calls.append((grant_type, value))
        await asyncio.to_thread(release.wait, 10)
        return {"access_token": f"at-{len(calls)}", "expires_in": 7200, "refresh_token": "rt"}

    manager = TokenManager(exchange, clock=clock)
    results: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        token = manager.get_token_sync("u1", auth_code="c", timeout=20)
        with lock:
            results.append(token)

    try:
        pool = [threading.Thread(target=worker) for _ in range(20)]
        for t in pool:
            t.start()
        release.set()
        for t in pool:
            t.join(timeout=30)
        assert results == ["at-1"] * 20
        assert calls == [("authorization_code", "c")]

        seen: list[str] = []

        def call(token: str) -> str:
            seen.append(token)
            if len(seen) == 1:
                raise TokenExpired()
            return token

        assert manager.with_token_retry_sync("u1", call) == "at-2"
        assert seen == ["at-1", "at-2"]
    finally:
        manager.close()
