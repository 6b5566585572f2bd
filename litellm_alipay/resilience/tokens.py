"""OAuth user-token manager (A8): exchange once, cache, refresh ahead of expiry, single-flight per key.

Why: a user ``auth_token`` comes from ``alipay.system.oauth.token`` (grant ``authorization_code`` once,
then ``refresh_token``). Exchanging per request would be slow and, since auth codes are single-use and
refresh tokens may rotate, *wrong*: two concurrent refreshes with one refresh token can leave one of them
holding a revoked token. So each key (one end user of one app) has at most one exchange in flight —
across coroutines, event loops and threads — and every waiter shares its result.

Refresh policy, with ``window = min(refresh_window, token lifetime / 2)`` (the halving stops a short-lived
token from being refreshed on every call):

* more than ``window`` left: return the cached token;
* valid but within ``window``: return the cached token and refresh in the background (an asyncio task);
  a failed background refresh is logged and not retried for ``retry_backoff`` seconds;
* expired or ``invalidate``-d: refresh inline; every caller waits for the one exchange, and its failure
  propagates to all of them.

Expiry is counted from when the exchange was *sent* (the conservative end). ``exchange`` is the injected
transport: ``async exchange(grant_type, value) -> {"access_token", "expires_in", "refresh_token",
"re_expires_in", "user_id"}`` (numbers or strings). The sync facade (``get_token_sync``,
``with_token_retry_sync``) runs the same code on a private event-loop thread, so ``exchange`` must not be
bound to one loop (e.g. an ``httpx.AsyncClient`` created per loop or per call is fine).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import ConfigurationError, ProtocolError

log = logging.getLogger(__name__)

T = TypeVar("T")
#: Cached user tokens per manager (one per credential); the oldest go first beyond this.
MAX_CACHED = 100_000
#: The deadline (``time.monotonic()``) of the call that starts an exchange: the exchange inherits it.
EXCHANGE_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("alipay_exchange_deadline",
                                                                                  default=None)
Exchange = Callable[[str, str], Awaitable[Mapping[str, Any]]]

# 20001 sub_codes that mean "this user token is no longer good": refresh once and retry once.
TOKEN_EXPIRED_SUB_CODES = frozenset({"aop.auth-token-time-out", "aop.invalid-auth-token"})


@dataclass(frozen=True)
class UserToken:
    """A cached user token; times are in the manager's clock (seconds). Tokens stay out of its repr."""

    access_token: str = field(repr=False)
    issued_at: float
    expires_at: float
    refresh_token: str | None = field(repr=False)
    refresh_expires_at: float | None
    user_id: str | None


def _seconds(raw: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = raw.get(name)
    if value is None or value == "":
        if required:
            raise ProtocolError(f"OAuth token answer has no {name}")
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ProtocolError(f"OAuth token answer has a non-numeric {name}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ProtocolError(f"OAuth token answer has an invalid {name}")
    return seconds


def parse_token(raw: Mapping[str, Any], issued_at: float, previous_refresh: str | None = None) -> UserToken:
    """Read an ``alipay.system.oauth.token`` answer; numbers may arrive as strings (A8).

    A refresh answer without a new ``refresh_token`` keeps the previous one.
    """
    access = raw.get("access_token")
    if not isinstance(access, str) or not access:
        raise ProtocolError("OAuth token answer has no access_token")
    expires_in = _seconds(raw, "expires_in", required=True)
    re_expires_in = _seconds(raw, "re_expires_in", required=False)
    refresh = raw.get("refresh_token") or previous_refresh
    user_id = raw.get("user_id") or raw.get("open_id")  # apps on OpenID answer open_id instead
    return UserToken(
        access_token=access,
        issued_at=issued_at,
        expires_at=issued_at + (expires_in or 0.0),
        refresh_token=str(refresh) if refresh else None,
        refresh_expires_at=None if re_expires_in is None else issued_at + re_expires_in,
        user_id=None if user_id is None else str(user_id),
    )


class TokenManager:
    """Per-key user tokens with single-flight exchange and background refresh (see module docstring)."""

    def __init__(
        self,
        exchange: Exchange,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh_window: float = 1800.0,
        retry_backoff: float = 30.0,
        store: Any = None,
    ) -> None:
        self._exchange = exchange
        self._store = store  # RedisTokenStore: single flight across processes (token_store.py)
        self._clock = clock
        self.refresh_window = refresh_window
        self.retry_backoff = retry_backoff
        self._lock = threading.Lock()
        self._cache: dict[str, UserToken] = {}
        self._inflight: dict[str, concurrent.futures.Future[UserToken]] = {}
        self._background_not_before: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # strong references: a bare task may be collected
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None

    # ------------------------------------------------------------------ async API
    def cached(self, key: str) -> UserToken | None:
        """The cached token of ``key`` (for ``user_id`` and diagnostics), without any exchange."""
        with self._lock:
            return self._cache.get(key)

    async def get_token(self, key: str, *, auth_code: str | None = None, refresh_token: str | None = None) -> str:
        """A valid access token for ``key``, exchanging or refreshing as needed.

        ``auth_code`` / ``refresh_token`` are only used when nothing usable is cached (an auth code is
        single-use; a cached refresh token is newer than one the caller holds). Raises
        ``ConfigurationError`` when there is no token and no means to get one, or whatever the exchange
        raised.
        """
        now = self._clock()
        with self._lock:
            entry = self._cache.get(key)
            background = False
            if entry is not None and entry.expires_at > now:
                left = entry.expires_at - now
                window = min(self.refresh_window, (entry.expires_at - entry.issued_at) / 2)
                background = (
                    left <= window
                    and entry.refresh_token is not None
                    and key not in self._inflight
                    and now >= self._background_not_before.get(key, -math.inf)
                )
                if not background:
                    return entry.access_token
        if entry is not None and background:
            flight = self._start_or_join(key, lambda: ("refresh_token", entry.refresh_token or ""))
            flight.add_done_callback(lambda f: self._after_background(key, f))
            return entry.access_token
        flight = self._start_or_join(key, lambda: self._grant(key, auth_code, refresh_token))
        # shield: one waiter's cancellation must not cancel the exchange the others share.
        return (await asyncio.shield(asyncio.wrap_future(flight))).access_token

    def invalidate(self, key: str, token: str | None = None) -> None:
        """Force the next ``get_token`` to refresh (after ``20001 aop.auth-token-time-out``).

        With ``token``, only if that is still the cached token: when many calls fail with the same stale
        token, the first invalidation triggers one refresh and the rest do not discard its result.
        """
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None and (token is None or entry.access_token == token):
                self._cache[key] = UserToken(
                    entry.access_token, entry.issued_at, -math.inf, entry.refresh_token,
                    entry.refresh_expires_at, entry.user_id,
                )

    def forget(self, key: str) -> None:
        """Drop everything cached for ``key`` (user revoked the authorization)."""
        with self._lock:
            self._cache.pop(key, None)
            self._background_not_before.pop(key, None)

    async def with_token_retry(
        self,
        key: str,
        call: Callable[[str], Awaitable[T]],
        *,
        auth_code: str | None = None,
        refresh_token: str | None = None,
    ) -> T:
        """Run ``call(token)``; on an expired/invalid-token error refresh once and retry once.

        Safe to retry: a 20001 is refused before the method runs, so no payment action (B5) executed.
        The error is recognised by duck typing (``exc.sub_code``), so any error class carrying the
        Alipay sub_code works. A failing refresh propagates its own error.
        """
        token = await self.get_token(key, auth_code=auth_code, refresh_token=refresh_token)
        try:
            return await call(token)
        except Exception as exc:
            if getattr(exc, "sub_code", None) not in TOKEN_EXPIRED_SUB_CODES:
                raise
            self.invalidate(key, token)
        token = await self.get_token(key)
        return await call(token)

    # ------------------------------------------------------------------ sync facade
    def get_token_sync(
        self, key: str, *, auth_code: str | None = None, refresh_token: str | None = None,
        timeout: float | None = None, deadline: float | None = None,
    ) -> str:
        """Blocking ``get_token`` for the sync path; runs on the manager's private event-loop thread.

        With ``deadline`` (``time.monotonic()`` seconds) the wait ends there with ``TimeoutError``.
        """
        loop = self._private_loop()

        async def run() -> str:
            EXCHANGE_DEADLINE.set(deadline)
            return await self.get_token(key, auth_code=auth_code, refresh_token=refresh_token)

        future = asyncio.run_coroutine_threadsafe(run(), loop)
        if deadline is not None:
            timeout = max(0.0, deadline - time.monotonic())
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError("no user token within the call's deadline") from None

    def with_token_retry_sync(
        self, key: str, call: Callable[[str], T], *, auth_code: str | None = None,
        refresh_token: str | None = None, deadline: float | None = None,
    ) -> T:
        """Blocking ``with_token_retry`` where ``call`` is a plain function."""
        token = self.get_token_sync(key, auth_code=auth_code, refresh_token=refresh_token, deadline=deadline)
        try:
            return call(token)
        except Exception as exc:
            if getattr(exc, "sub_code", None) not in TOKEN_EXPIRED_SUB_CODES:
                raise
            self.invalidate(key, token)
        return call(self.get_token_sync(key, deadline=deadline))

    def close(self) -> None:
        """Stop the private loop thread of the sync facade, if it was started."""
        with self._lock:
            loop, thread = self._loop, self._loop_thread
            self._loop = self._loop_thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()

    # ------------------------------------------------------------------ internals
    def _grant(self, key: str, auth_code: str | None, refresh_token: str | None) -> tuple[str, str]:
        """Which grant to use now (called under the lock, only when no exchange is in flight)."""
        entry = self._cache.get(key)
        now = self._clock()
        cached_refresh = entry.refresh_token if entry is not None else None
        refresh_alive = cached_refresh is not None and (
            entry is None or entry.refresh_expires_at is None or now < entry.refresh_expires_at
        )
        if cached_refresh and refresh_alive:
            return "refresh_token", cached_refresh
        if auth_code:
            return "authorization_code", auth_code
        if refresh_token:
            return "refresh_token", refresh_token
        if cached_refresh:  # expired by our clock; the server has the last word
            return "refresh_token", cached_refresh
        raise ConfigurationError("auth_code", f"no user token for {key!r} and no auth_code or refresh_token")

    def _start_or_join(self, key: str, grant: Callable[[], tuple[str, str]]) -> concurrent.futures.Future[UserToken]:
        """The exchange in flight for ``key``, starting one in the running loop if there is none.

        A ``concurrent.futures.Future`` (not an asyncio one) so waiters on other loops/threads can join.
        """
        with self._lock:
            flight = self._inflight.get(key)
            if flight is not None:
                return flight
            grant_type, value = grant()
            flight = concurrent.futures.Future()
            self._inflight[key] = flight
            previous = self._cache.get(key)
        task = asyncio.get_running_loop().create_task(self._run_exchange(key, grant_type, value, previous, flight))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return flight

    async def _run_exchange(
        self, key: str, grant_type: str, value: str, previous: UserToken | None,
        flight: concurrent.futures.Future[UserToken],
    ) -> None:
        started = self._clock()
        try:
            if self._store is not None:
                raw = await self._store.exchange_once(
                    key, grant_type, previous.access_token if previous else None,
                    lambda: self._exchange(grant_type, value), EXCHANGE_DEADLINE.get())
            else:
                raw = await self._exchange(grant_type, value)
            entry = parse_token(raw, started, previous.refresh_token if previous else None)
        except BaseException as exc:
            with self._lock:
                self._inflight.pop(key, None)
            flight.set_exception(exc)
            if not isinstance(exc, Exception):
                raise  # cancellation / interpreter exit: the waiters were told, now let it unwind
            return
        with self._lock:
            self._cache[key] = entry
            self._background_not_before.pop(key, None)
            self._inflight.pop(key, None)
            while len(self._cache) > MAX_CACHED:  # one entry per credential: bounded, oldest first
                self._cache.pop(next(iter(self._cache)))
        flight.set_result(entry)

    def _after_background(self, key: str, flight: concurrent.futures.Future[UserToken]) -> None:
        exc = flight.exception()
        if exc is not None:
            log.warning("background refresh of a user token failed (%s); keeping the current token",
                        type(exc).__name__)
            with self._lock:
                self._background_not_before[key] = self._clock() + self.retry_backoff

    def _private_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="alipay-token-loop", daemon=True)
                thread.start()
                self._loop, self._loop_thread = loop, thread
            if threading.current_thread() is self._loop_thread:
                raise RuntimeError("get_token_sync called from the token manager's own loop; await get_token")
            return self._loop
