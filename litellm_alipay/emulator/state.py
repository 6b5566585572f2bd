"""The emulator's mutable state: stats, idempotency store, nonces, OAuth tokens, quota windows.

Single-threaded by design: every method runs on the event loop without awaiting, so no locks are
needed and the per-request cost stays a few dict operations.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .config import QuotaConfig
from .model import ActionIntent, fee

_SECONDS_KEPT = 900


class Stats:
    """What reached the gateway, so tests and benchmarks can assert on it."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.started = time.time()
        self.requests_total = 0
        self.requests_by_app: dict[str, int] = defaultdict(int)
        self.requests_by_method: dict[str, int] = defaultdict(int)
        self.per_second: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.rejections: dict[str, int] = defaultdict(int)
        self.actions_executed: dict[str, int] = defaultdict(int)
        self.action_repeats = 0
        self.actions_refused_by_limit = 0
        self.faults: dict[str, int] = defaultdict(int)
        self.openai_requests: dict[str, int] = defaultdict(int)
        self.openai_body_keys: set[str] = set()  # what a non-Alipay model was sent (fallback hygiene)
        self.successes = 0
        self.abandoned = 0

    def request(self, app_id: str, method: str) -> None:
        self.requests_total += 1
        self.requests_by_app[app_id] += 1
        self.requests_by_method[method] += 1
        seconds = self.per_second[app_id]
        now = int(time.time())
        seconds[now] += 1
        if len(seconds) > _SECONDS_KEPT:
            for old in [s for s in seconds if s < now - _SECONDS_KEPT]:
                del seconds[old]

    def reject(self, reason: str) -> None:
        self.rejections[reason] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "uptime_seconds": round(time.time() - self.started, 3),
            "requests_total": self.requests_total,
            "successes": self.successes,
            "abandoned": self.abandoned,
            "requests_by_app": dict(self.requests_by_app),
            "requests_by_method": dict(self.requests_by_method),
            "requests_per_second": {
                app: {str(s): n for s, n in sorted(secs.items())} for app, secs in self.per_second.items()
            },
            "rejections": dict(self.rejections),
            "actions_executed": dict(self.actions_executed),
            "action_repeats": self.action_repeats,
            "actions_refused_by_limit": self.actions_refused_by_limit,
            "faults_injected": dict(self.faults),
            "openai_requests": dict(self.openai_requests),
            "openai_body_keys": sorted(self.openai_body_keys),
        }


class IdempotencyStore:
    """At most once per (app_id, out_request_no): the first execution's actions are kept forever."""

    def __init__(self) -> None:
        self._done: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._trade_seq = 0

    def clear(self) -> None:
        self._done.clear()

    def execute(
        self, app_id: str, out_request_no: str | None, intents: list[ActionIntent], stats: Stats,
        max_action: int | None = None, max_total: int | None = None,
    ) -> list[dict[str, Any]]:
        """Run the intents once; a repeat of the same key returns the stored first result. B5 limits (cents):
        no action above ``max_action``; none once the executed total would pass ``max_total``."""
        if not intents:
            return []
        key = (app_id, out_request_no) if out_request_no else None
        if key is not None and key in self._done:
            stats.action_repeats += 1
            return self._done[key]
        ref = out_request_no or secrets.token_hex(8)
        results = []
        executed = 0
        for intent in intents:
            cents = int(Decimal(intent.amount) * 100)
            over = (max_action is not None and cents > max_action) or \
                (max_total is not None and executed + cents > max_total)
            fail_code = "AI.ACTION_LIMIT_EXCEEDED" if over else intent.fail_code
            if fail_code:
                stats.actions_refused_by_limit += 1 if over else 0
                results.append({
                    "action": intent.action, "status": "FAILED", "out_request_no": ref,
                    "trade_no": None, "amount": intent.amount, "currency": "CNY", "fee": "0.00",
                    "error_code": fail_code,
                })
                continue
            executed += cents
            self._trade_seq += 1
            stats.actions_executed[intent.action] += 1
            results.append({
                "action": intent.action, "status": "SUCCESS", "out_request_no": ref,
                "trade_no": time.strftime("%Y%m%d") + f"22{self._trade_seq:012d}",
                "amount": intent.amount, "currency": "CNY", "fee": fee(intent.amount),
                "error_code": None,
            })
        if key is not None:
            self._done[key] = results
        return results

    def __len__(self) -> int:
        return len(self._done)


class NonceStore:
    """v3 nonces seen within the timestamp tolerance; a replay inside it is refused."""

    def __init__(self, ttl: float) -> None:
        self.ttl = max(ttl, 1.0)
        self._seen: dict[tuple[str, str], float] = {}
        self._next_prune = 0.0

    def clear(self) -> None:
        self._seen.clear()

    def claim(self, app_id: str, nonce: str) -> bool:
        """True the first time (app_id, nonce) is seen; False for a replay."""
        now = time.monotonic()
        if now >= self._next_prune:
            self._seen = {k: t for k, t in self._seen.items() if t > now}
            self._next_prune = now + self.ttl
        key = (app_id, nonce)
        expiry = self._seen.get(key)
        if expiry is not None and expiry > now:
            return False
        self._seen[key] = now + 2 * self.ttl
        return True


@dataclass
class Token:
    app_id: str
    user_id: str
    expires_at: float


class TokenStore:
    """OAuth (A8): authorization codes are single-use; access and refresh tokens expire."""

    def __init__(self) -> None:
        self.access: dict[str, Token] = {}
        self.refresh: dict[str, Token] = {}
        self.used_codes: set[tuple[str, str]] = set()

    def clear(self) -> None:
        self.access.clear()
        self.refresh.clear()
        self.used_codes.clear()

    @staticmethod
    def user_id_for(code: str) -> str:
        digits = str(int(hashlib.sha256(code.encode()).hexdigest(), 16))
        return "2088" + digits[:12]

    def issue(self, app_id: str, user_id: str, expires_in: int, re_expires_in: int) -> dict[str, Any]:
        now = time.time()
        access, refresh = "authusrB" + secrets.token_hex(16), "authusrR" + secrets.token_hex(16)
        self.access[access] = Token(app_id, user_id, now + expires_in)
        self.refresh[refresh] = Token(app_id, user_id, now + re_expires_in)
        return {
            "access_token": access, "expires_in": expires_in, "refresh_token": refresh,
            "re_expires_in": re_expires_in, "user_id": user_id, "alipay_user_id": user_id,
            "auth_start": time.strftime("%Y-%m-%d %H:%M:%S"),
        }

    def check_access(self, app_id: str, token: str) -> str | None:
        """None when valid, else the sub_code to answer with."""
        found = self.access.get(token)
        if found is None or found.app_id != app_id:
            return "aop.invalid-auth-token"
        if time.time() >= found.expires_at:
            return "aop.auth-token-time-out"
        return None


class QuotaWindows:
    """Sliding windows per app: exact, so a test never straddles a fixed-window boundary."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    def clear(self) -> None:
        self._hits.clear()

    def admit(self, app_id: str, quota: QuotaConfig) -> bool:
        """Record the request and say whether it is within quota (refused ones do not count)."""
        if quota.per_minute is None and quota.per_second is None:
            return True
        now = time.monotonic()
        hits = self._hits[app_id]
        while hits and hits[0] <= now - 60.0:
            hits.popleft()
        if quota.per_minute is not None and len(hits) >= quota.per_minute:
            return False
        if quota.per_second is not None:
            recent = 0
            for t in reversed(hits):
                if t <= now - 1.0:
                    break
                recent += 1
                if recent >= quota.per_second:
                    return False
        hits.append(now)
        return True


class State:
    """All mutable state of one emulator, reset as a whole by the admin endpoint."""

    def __init__(self, nonce_ttl: float) -> None:
        self.stats = Stats()
        self.idempotency = IdempotencyStore()
        self.nonces = NonceStore(nonce_ttl)
        self.tokens = TokenStore()
        self.quotas = QuotaWindows()
        self.request_no = 0

    def reset(self) -> None:
        self.stats.reset()
        self.idempotency.clear()
        self.nonces.clear()
        self.tokens.clear()
        self.quotas.clear()
        self.request_no = 0
