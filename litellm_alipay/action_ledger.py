"""Which app a logical action-bearing request was first sent to, so it never reaches a second app.

Why: each app's gateway deduplicates actions by ``out_request_no`` — within that app. When the Router
falls back from app A to app B after A executed a refund and the answer was lost, B would execute it
again. So the first attempt claims the request's idempotency key for its app; a later attempt of the
same logical request with another ``app_id`` is refused (``ActionInDoubtError``) and the caller
reconciles with A. Claims live in process memory (bounded, expiring) and, with ``redis_url``, in Redis
(``SET NX``) so every worker and proxy instance sees them. Redis trouble never fails a call: the
in-process claim still holds for this worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from .errors import ActionInDoubtError

log = logging.getLogger("litellm_alipay")

#: How long a claim is kept: longer than any retry or fallback chain of one logical request.
CLAIM_SECONDS = 24 * 3600
MAX_LOCAL_CLAIMS = 100_000
_PREFIX = "litellm_alipay:action:"


@dataclass(frozen=True)
class Claim:
    app_id: str
    out_request_no: str


class ActionLedger:
    """Claims of idempotency keys by app: memory first, Redis (shared) when configured."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claims: OrderedDict[str, tuple[float, Claim]] = OrderedDict()
        self._warned = False

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

    def release(self, key: str, claim: Claim) -> None:
        """Forget a claim whose request provably never left this process (nothing was sent)."""
        with self._lock:
            found = self._claims.get(key)
            if found is not None and found[1] == claim:
                del self._claims[key]

    def _check(self, key: str, claim: Claim, holder: Claim) -> None:
        if holder.app_id != claim.app_id:
            raise ActionInDoubtError(holder.app_id, holder.out_request_no)

    def claim(self, key: str, claim: Claim, redis: object | None = None) -> None:
        """Claim ``key`` for ``claim.app_id``; raise ``ActionInDoubtError`` if another app holds it."""
        holder = self._local(key, claim)
        if redis is not None:
            try:
                value = f"{claim.app_id}|{claim.out_request_no}"
                client = redis.sync()  # type: ignore[attr-defined]
                if not client.set(_PREFIX + key, value, nx=True, ex=CLAIM_SECONDS):
                    holder = _parse(client.get(_PREFIX + key)) or holder
            except Exception as exc:  # noqa: BLE001 - bookkeeping never fails a call
                self._warn(exc)
        self._check(key, claim, holder)

    async def aclaim(self, key: str, claim: Claim, redis: object | None = None) -> None:
        holder = self._local(key, claim)
        if redis is not None:
            try:
                value = f"{claim.app_id}|{claim.out_request_no}"
                client = redis.for_running_loop()  # type: ignore[attr-defined]
                if not await client.set(_PREFIX + key, value, nx=True, ex=CLAIM_SECONDS):
                    holder = _parse(await client.get(_PREFIX + key)) or holder
            except Exception as exc:  # noqa: BLE001 - bookkeeping never fails a call
                self._warn(exc)
        self._check(key, claim, holder)

    def _warn(self, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            log.warning("action ledger: Redis unavailable (%s); claims kept in this process only",
                        type(exc).__name__)


def _parse(raw: object) -> Claim | None:
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    app_id, _, number = text.partition("|")
    return Claim(app_id, number) if app_id else None


_redis: dict[str, object] = {}


def redis_for(url: str | None) -> object | None:
    """The shared ``RedisClients`` of one Redis URL (None without Redis)."""
    if not url:
        return None
    found = _redis.get(url)
    if found is None:
        from .resilience._redis import RedisClients

        found = _redis.setdefault(url, RedisClients(url))
    return found


ledger = ActionLedger()
