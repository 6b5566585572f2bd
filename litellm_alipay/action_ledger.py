"""Which app a logical action-bearing request was sent to, so it never reaches a second app.

Why: each app's gateway deduplicates actions by ``out_request_no`` — within that app. When the Router
falls back from app A to app B after A executed a refund and the answer was lost, B would execute it
again. So an attempt claims the request's idempotency key for its app before it is sent; a later attempt
of the same logical request with another ``app_id`` is refused (``ActionInDoubtError``) and the caller
reconciles with A. An attempt that provably never left (circuit open, quota, deadline before sending)
releases its claim, so a healthy fallback is not refused. A key reused for a *different* request (another
prompt, other actions) is refused too, as Stripe refuses a reused idempotency key with other parameters.

Claims live in process memory (bounded, expiring) and, with ``redis_url``, in Redis (``SET NX``) so every
worker and proxy instance sees them. Redis trouble never fails or delays a call: this worker's claims
still hold, and Redis is tried again after a back-off (one WARNING per outage).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from .errors import PROVIDER, ActionInDoubtError, AlipayError, ConfigurationError, local_error

log = logging.getLogger("litellm_alipay")

#: How long a claim is kept: longer than any retry or fallback chain of one logical request.
CLAIM_SECONDS = 24 * 3600
MAX_LOCAL_CLAIMS = 100_000
RETRY_REDIS_AFTER = 1.0
_PREFIX = "litellm_alipay:action:"


class IdempotencyKeyReusedError(ConfigurationError):
    """The same idempotency key sent with a different request."""

    def __init__(self) -> None:
        super().__init__("Idempotency-Key", "was already used for a different request (other messages or "
                         "actions); use a new key for a new request, the same key only to retry the same one")


@dataclass(frozen=True)
class Claim:
    app_id: str
    out_request_no: str
    fingerprint: str = ""

    def encode(self) -> str:
        return f"{self.app_id}|{self.out_request_no}|{self.fingerprint}"


@dataclass(frozen=True)
class ActionClaim:
    """One attempt's claim: what to take before sending and to give back if nothing was sent."""

    key: str
    claim: Claim
    redis: object | None = None


class ActionLedger:
    """Claims of idempotency keys by app: memory first, Redis (shared) when configured."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claims: OrderedDict[str, tuple[float, Claim]] = OrderedDict()
        self._down_until = 0.0
        self._outage = False

    def _local(self, key: str, claim: Claim) -> Claim:
        now = time.monotonic()
        with self._lock:
            found = self._claims.get(key)
            if found is not None and found[0] > now:
                return found[1]
            self._claims[key] = (now + CLAIM_SECONDS, claim)
            while len(self._claims) > MAX_LOCAL_CLAIMS:
                self._claims.popitem(last=False)
            return claim

    @staticmethod
    def _check(claim: Claim, holder: Claim) -> None:
        if holder.fingerprint and claim.fingerprint and holder.fingerprint != claim.fingerprint:
            raise IdempotencyKeyReusedError()
        if holder.app_id != claim.app_id:
            raise ActionInDoubtError(holder.app_id, holder.out_request_no)

    def _use_redis(self, redis: object | None) -> bool:
        return redis is not None and time.monotonic() >= self._down_until

    def _failed(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + RETRY_REDIS_AFTER
        if not self._outage:
            self._outage = True
            log.warning("action ledger: Redis unavailable (%s); claims kept in this process until it returns",
                        type(exc).__name__)

    def _ok(self) -> None:
        if self._outage:
            self._outage = False
            log.info("action ledger: Redis is back")

    def claim(self, held: ActionClaim) -> None:
        """Claim the key for this attempt's app; raise if another app or another request holds it."""
        holder = self._local(held.key, held.claim)
        if self._use_redis(held.redis):
            from .resilience.failopen import redis_errors

            try:
                client = held.redis.sync()  # type: ignore[union-attr]
                if not client.set(_PREFIX + held.key, held.claim.encode(), nx=True, ex=CLAIM_SECONDS):
                    holder = _parse(client.get(_PREFIX + held.key)) or holder
                self._ok()
            except redis_errors() as exc:
                self._failed(exc)
        self._check(held.claim, holder)

    async def aclaim(self, held: ActionClaim) -> None:
        holder = self._local(held.key, held.claim)
        if self._use_redis(held.redis):
            from .resilience.failopen import redis_errors

            try:
                client = held.redis.for_running_loop()  # type: ignore[union-attr]
                if not await client.set(_PREFIX + held.key, held.claim.encode(), nx=True, ex=CLAIM_SECONDS):
                    holder = _parse(await client.get(_PREFIX + held.key)) or holder
                self._ok()
            except redis_errors() as exc:
                self._failed(exc)
        self._check(held.claim, holder)

    def release(self, held: ActionClaim) -> None:
        """Give back a claim whose attempt provably never left this process (nothing was sent)."""
        with self._lock:
            found = self._claims.get(held.key)
            if found is not None and found[1] == held.claim:
                del self._claims[held.key]
        if self._use_redis(held.redis):
            from .resilience.failopen import redis_errors

            try:  # only our own claim: compare and delete
                client = held.redis.sync()  # type: ignore[union-attr]
                client.eval(_RELEASE, 1, _PREFIX + held.key, held.claim.encode())
            except redis_errors() as exc:
                self._failed(exc)

    async def arelease(self, held: ActionClaim) -> None:
        with self._lock:
            found = self._claims.get(held.key)
            if found is not None and found[1] == held.claim:
                del self._claims[held.key]
        if self._use_redis(held.redis):
            from .resilience.failopen import redis_errors

            try:
                client = held.redis.for_running_loop()  # type: ignore[union-attr]
                await client.eval(_RELEASE, 1, _PREFIX + held.key, held.claim.encode())
            except redis_errors() as exc:
                self._failed(exc)


_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def _parse(raw: object) -> Claim | None:
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    app_id, _, rest = text.partition("|")
    number, _, fingerprint = rest.partition("|")
    return Claim(app_id, number, fingerprint) if app_id else None


#: ``alipay_code`` of failures that provably sent nothing: their claim is released.
UNSENT_CODES = frozenset({"client-quota", "circuit-open", "configuration", "local-overload", "LocalOverloadError",
                          "deadline-before-send", "tenant-mismatch", "data-residency"})

_redis: dict[str, object] = {}


def redis_for(url: str | None) -> object | None:
    """The shared ``RedisClients`` of one Redis URL (None without Redis)."""
    if not url:
        return None
    found = _redis.get(url)
    if found is None:
        from .resilience.redis_clients import RedisClients

        found = _redis.setdefault(url, RedisClients(url))
    return found


ledger = ActionLedger()


@contextlib.contextmanager
def holding(held: ActionClaim | None, model: str) -> Iterator[None]:
    """Claim the action key around a sync call: ``aholding`` driven from sync (``transport/sync_driver.py``),
    one claim-and-give-back implementation."""
    if held is None:
        yield
        return
    from .transport.sync_driver import SYNC

    manager = aholding(held, model)
    SYNC.run(manager.__aenter__())
    try:
        yield
    except BaseException as exc:
        SYNC.run(manager.__aexit__(type(exc), exc, exc.__traceback__))
        raise
    SYNC.run(manager.__aexit__(None, None, None))


@contextlib.asynccontextmanager
async def aholding(held: ActionClaim | None, model: str) -> AsyncIterator[None]:
    """Claim the action key for this app around the call; give it back if nothing was sent."""
    if held is None:
        yield
        return
    try:
        await ledger.aclaim(held)
    except AlipayError as exc:
        raise local_error(exc, model=model, provider=PROVIDER) from None
    try:
        yield
    except BaseException as exc:
        if getattr(exc, "alipay_code", None) in UNSENT_CODES:
            await ledger.arelease(held)
        raise
