"""The state payments share between workers and instances: named values in the durable money ledger.

Used for each trade's refunded total (only grows), pending confirmations (taken once) and handled
notification ids (claimed once, kept for good) — money state, so in the ledger (``ledger/``: SQLite on
one host, PostgreSQL when shared), never in Redis, which may lose it. Every operation is one
transaction, so two workers can never both confirm one proposal or both apply one notification.
"""

from __future__ import annotations

from ..ledger import Hold, Ledger, ledger_for


class SharedStore:
    """Names are namespaced under ``payments:``; values are small strings and integers. Without a
    ledger given, the process's ledger (``ALIPAY_LEDGER_URL``) is looked up at each call."""

    PREFIX = "payments:"

    def __init__(self, ledger: Ledger | None = None) -> None:
        self._ledger = ledger

    @property
    def ledger(self) -> Ledger:
        return self._ledger or ledger_for()

    async def exists(self, key: str) -> bool:
        return await self.ledger.exists(self.PREFIX + key)

    async def add_within(self, key: str, amount: int, cap: int, ttl: int, setting: str = "cap") -> None:
        """Add ``amount`` unless the total would pass ``cap`` (``PolicyError`` naming ``setting``)."""
        import time

        await self.ledger.book([Hold(self.PREFIX + key, amount, cap, setting, time.time() + ttl)])

    async def add(self, key: str, amount: int) -> None:
        await self.ledger.add(self.PREFIX + key, amount)

    async def hget_int(self, key: str, field: str, default: int = 0) -> int:
        return await self.ledger.get_int(f"{self.PREFIX}{key}:{field}", default)

    async def hmax(self, key: str, field: str, value: int) -> None:
        """Raise the field to ``value`` (never lowers it)."""
        await self.ledger.raise_to(f"{self.PREFIX}{key}:{field}", value)

    async def put(self, key: str, value: str, ttl: int) -> None:
        await self.ledger.put(self.PREFIX + key, value, ttl)

    async def take(self, key: str) -> str | None:
        """The value, deleted in the same step (so only one taker ever gets it)."""
        return await self.ledger.take(self.PREFIX + key)

    async def claim(self, key: str, ttl: int | None = None) -> bool:
        """True for the first claimant of ``key`` (``ttl`` None: kept for good)."""
        return await self.ledger.claim(self.PREFIX + key, ttl)

    async def unclaim(self, key: str) -> None:
        await self.ledger.unclaim(self.PREFIX + key)
