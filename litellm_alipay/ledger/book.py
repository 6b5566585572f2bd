"""The money ledger's operations: logical requests, their actions, cap totals, and named values.

Every method is one transaction (``engine.py``) run on a worker thread, so the event loop never waits
on the disk or the database. The rules it keeps (LEDGER.md):

* a logical request is its hashed, caller-scoped key; a second request under the key with another
  fingerprint is refused (``IdempotencyKeyReusedError``), and one bound to another app is in doubt;
* an action is claimed once per ``(request, action, trade)``, before anything is sent, in the same
  transaction as its cap holds — two concurrent attempts cannot both pass a cap or both claim;
* an outcome is settled after the answer: holds are kept for money that moved (or may have moved) and
  given back for money that certainly did not;
* a ledger that cannot be reached raises ``LedgerUnavailableError``: the caller fails closed.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import (
    ActionInDoubtError,
    ConfigurationError,
    LedgerUnavailableError,
    PolicyError,
    RequestInProgressError,
)
from . import schema
from .engine import Engine, Tx

T = TypeVar("T")

#: action states: claimed (written before the send; may have been sent) → succeeded | failed | unknown
CLAIMED, SUCCEEDED, FAILED, UNKNOWN = "claimed", "succeeded", "failed", "unknown"
FINAL = frozenset({SUCCEEDED, FAILED})


class IdempotencyKeyReusedError(ConfigurationError):
    """The same idempotency key sent with a different request (Stripe's rule)."""

    kind = "idempotency key"

    def __init__(self, name: str = "Idempotency-Key", detail: str = "other messages or actions") -> None:
        super().__init__(name, f"was already used for a different request ({detail}); use a new key for a new "
                               "request, the same key only to retry the same one")


@dataclass(frozen=True)
class Hold:
    """Cents booked against one cap total while an action may move money; ``setting`` names the cap."""

    name: str
    cents: int
    cap: int
    setting: str
    expires: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cents": self.cents}


@dataclass(frozen=True)
class ActionRow:
    request_id: str = field(repr=False)
    action: str
    trade: str
    out_request_no: str
    amount_cents: int | None
    state: str
    result: str | None
    answer: dict[str, Any] | None = field(repr=False)
    holds: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class RequestRecord:
    id: str = field(repr=False)
    app_id: str
    fingerprint: str
    response: dict[str, Any] | None = field(repr=False)
    actions: tuple[ActionRow, ...]
    created: bool  # this call created the record


_ACTION_COLUMNS = "request_id, action, trade, out_request_no, amount_cents, state, result, answer, holds"


def _action(row: Sequence[Any]) -> ActionRow:
    return ActionRow(row[0], row[1], row[2], row[3], row[4], row[5], row[6],
                     json.loads(row[7]) if row[7] else None, tuple(json.loads(row[8] or "[]")))


class Ledger:
    """The durable money state of every worker and instance that shares its database."""

    #: every how many writes expired named values are swept
    SWEEP_EVERY = 500

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._ready = False
        self._lock = threading.Lock()
        self._writes = 0

    # ------------------------------------------------------------------------------- plumbing
    def _ensure(self) -> None:
        if self._ready:
            return
        with self._lock:
            if not self._ready:
                try:
                    schema.ensure(self.engine)
                except schema.SchemaTooNew as exc:
                    raise ConfigurationError("ALIPAY_LEDGER_URL", str(exc)) from None
                self._ready = True

    def _tx(self, work: Callable[[Tx], T]) -> T:
        for attempt in (1, 2):
            try:
                self._ensure()
                with self.engine.transaction() as tx:
                    return work(tx)
            except self.engine.unavailable as exc:
                if attempt == 2:
                    raise LedgerUnavailableError(f"{self.engine.name}: {type(exc).__name__}") from None
                self.engine.close()  # a connection the server dropped: one fresh try
        raise AssertionError("unreachable")

    async def _run(self, work: Callable[[Tx], T]) -> T:
        return await asyncio.to_thread(self._tx, work)

    async def transact(self, work: Callable[[Tx], T]) -> T:
        """Run ``work(tx)`` as one transaction on a worker thread: how a feature room keeps its own tables
        (``tx.run(sql, params)`` with ``?`` placeholders, SQL both engines speak); ``LedgerUnavailableError``
        when the database cannot be reached."""
        return await self._run(work)

    def run_sync(self, work: Callable[[Tx], T]) -> T:
        """One transaction from synchronous code (tests, the CLI)."""
        return self._tx(work)

    # ------------------------------------------------------------------------ logical requests
    async def open_request(self, request_id: str, app_id: str, fingerprint: str | None = None, *,
                           key_name: str = "Idempotency-Key", number: str = "",
                           lease: float | None = None) -> RequestRecord:
        """The request's record, created when new. ``fingerprint`` None: not checked (a door whose
        actions carry their own check). Raises when the key was used for another request or app.

        ``lease``: this attempt takes the request for that many seconds (until it answers or gives it back,
        ``unbusy``); while another attempt holds it, ``RequestInProgressError`` — two overlapping attempts
        never both send, nor both ask a model. A crashed attempt's lease runs out."""
        now = time.time()

        def work(tx: Tx) -> RequestRecord:
            created = tx.run("INSERT INTO alipay_requests (id, app_id, fingerprint, created, updated) "
                             "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                             (request_id, app_id, fingerprint or "", now, now)).rowcount == 1
            row = tx.run("SELECT app_id, fingerprint, response, busy_until FROM alipay_requests WHERE id = ?",
                         (request_id,)).fetchone()
            assert row is not None
            held_app, held_print, response, busy_until = row
            if fingerprint and held_print and held_print != fingerprint:
                raise IdempotencyKeyReusedError(key_name)
            if held_app != app_id:
                raise ActionInDoubtError(held_app, number or "(derived from the idempotency key)")
            if fingerprint and not held_print:
                tx.run("UPDATE alipay_requests SET fingerprint = ? WHERE id = ?", (fingerprint, request_id))
            if lease is not None and response is None:
                if not created and busy_until > now:
                    raise RequestInProgressError()
                tx.run("UPDATE alipay_requests SET busy_until = ? WHERE id = ?", (now + lease, request_id))
            actions = tuple(_action(r) for r in tx.run(
                f"SELECT {_ACTION_COLUMNS} FROM alipay_actions WHERE request_id = ? ORDER BY created, action, trade",
                (request_id,)).fetchall())
            return RequestRecord(request_id, held_app, held_print or fingerprint or "",
                                 json.loads(response) if response else None, actions, created)

        return await self._run(work)

    async def request(self, request_id: str) -> RequestRecord | None:
        """The request's record as it stands (read only), or None."""
        def work(tx: Tx) -> RequestRecord | None:
            row = tx.run("SELECT app_id, fingerprint, response FROM alipay_requests WHERE id = ?",
                         (request_id,)).fetchone()
            if row is None:
                return None
            actions = tuple(_action(r) for r in tx.run(
                f"SELECT {_ACTION_COLUMNS} FROM alipay_actions WHERE request_id = ? ORDER BY created, action, trade",
                (request_id,)).fetchall())
            return RequestRecord(request_id, row[0], row[1], json.loads(row[2]) if row[2] else None, actions, False)

        return await self._run(work)

    async def record_response(self, request_id: str, response: dict[str, Any]) -> None:
        """The answer every later request under the key is given (written before it returns)."""
        text = json.dumps(response, ensure_ascii=False, default=str)
        await self._run(lambda tx: tx.run("UPDATE alipay_requests SET response = ?, busy_until = 0, updated = ? "
                                          "WHERE id = ?", (text, time.time(), request_id)))

    async def unbusy(self, request_id: str) -> None:
        """Give the request back after an attempt that failed: the next attempt may take it at once."""
        await self._run(lambda tx: tx.run("UPDATE alipay_requests SET busy_until = 0 WHERE id = ?", (request_id,)))

    async def release_request(self, request_id: str) -> None:
        """Forget a request that sent nothing (no action, no answer): a fallback may take the key."""
        def work(tx: Tx) -> None:
            if tx.run("SELECT 1 FROM alipay_actions WHERE request_id = ?", (request_id,)).fetchone() is None:
                tx.run("DELETE FROM alipay_requests WHERE id = ? AND response IS NULL", (request_id,))

        await self._run(work)

    # ---------------------------------------------------------------------------------- actions
    async def action(self, request_id: str, action: str, trade: str) -> ActionRow | None:
        row = await self._run(lambda tx: tx.run(
            f"SELECT {_ACTION_COLUMNS} FROM alipay_actions WHERE request_id = ? AND action = ? AND trade = ?",
            (request_id, action, trade)).fetchone())
        return _action(row) if row else None

    async def claim_action(self, request_id: str, app_id: str, action: str, trade: str, out_request_no: str,
                           amount_cents: int | None, holds: Sequence[Hold] = ()) -> tuple[ActionRow, bool]:
        """``(row, True)`` when this attempt claimed the action (holds booked, commit before the send);
        ``(the existing row, False)`` when an earlier attempt did. A hold past its cap raises
        ``PolicyError`` naming the cap (nothing claimed)."""
        now = time.time()
        taken = json.dumps([h.to_dict() for h in holds])

        def work(tx: Tx) -> tuple[ActionRow, bool]:
            tx.run("INSERT INTO alipay_requests (id, app_id, created, updated) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT (id) DO NOTHING", (request_id, app_id, now, now))
            inserted = tx.run(
                "INSERT INTO alipay_actions (request_id, action, trade, out_request_no, amount_cents, state, "
                "holds, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (request_id, action, trade) DO NOTHING",
                (request_id, action, trade, out_request_no, amount_cents, CLAIMED, taken, now, now)).rowcount == 1
            if inserted:
                for hold in holds:
                    _book(tx, hold, now)
            row = tx.run(f"SELECT {_ACTION_COLUMNS} FROM alipay_actions WHERE request_id = ? AND action = ? "
                         "AND trade = ?", (request_id, action, trade)).fetchone()
            return _action(row), inserted

        return await self._run(work)

    async def settle_action(self, row: ActionRow, state: str, result: str | None, answer: dict[str, Any] | None,
                            *, keep_cents: int | None = None) -> bool:
        """Record an attempt's outcome, once: an action already settled (another attempt, a retried commit)
        keeps its first outcome and its holds are not given back twice — False then. ``keep_cents``: what
        stays booked on the stored holds (the money that moved); None keeps them as they are."""
        now = time.time()
        text = json.dumps(answer, ensure_ascii=False, default=str) if answer is not None else None

        def work(tx: Tx) -> bool:
            stored = tx.run("SELECT state, holds FROM alipay_actions WHERE request_id = ? AND action = ? AND trade = ?",
                            (row.request_id, row.action, row.trade)).fetchone()
            if stored is None or stored[0] not in (CLAIMED, UNKNOWN):
                return False
            holds = json.loads(stored[1] or "[]")
            if keep_cents is not None:
                for hold in holds:
                    give_back = hold["cents"] - min(keep_cents, hold["cents"])
                    if give_back:
                        tx.run("UPDATE alipay_values SET int_value = int_value - ? WHERE name = ?",
                               (give_back, hold["name"]))
                        hold["cents"] -= give_back
            tx.run("UPDATE alipay_actions SET state = ?, result = ?, answer = ?, holds = ?, updated = ? "
                   "WHERE request_id = ? AND action = ? AND trade = ?",
                   (state, result, text, json.dumps(holds), now, row.request_id, row.action, row.trade))
            return True

        return await self._run(work)

    async def release_action(self, row: ActionRow) -> None:
        """Forget a claim whose attempt provably sent nothing; its stored holds are given back (once)."""
        def work(tx: Tx) -> None:
            stored = tx.run("DELETE FROM alipay_actions WHERE request_id = ? AND action = ? AND trade = ? "
                            "AND state = ? RETURNING holds",
                            (row.request_id, row.action, row.trade, CLAIMED)).fetchone()
            for hold in json.loads(stored[0] or "[]") if stored else ():
                tx.run("UPDATE alipay_values SET int_value = int_value - ? WHERE name = ?",
                       (hold["cents"], hold["name"]))

        await self._run(work)

    async def book(self, holds: Sequence[Hold]) -> None:
        """Book holds on their own (one transaction: all or none); ``PolicyError`` past a cap."""
        now = time.time()

        def work(tx: Tx) -> None:
            for hold in holds:
                _book(tx, hold, now)

        await self._run(work)

    # ----------------------------------------------------------------------------- named values
    async def total(self, name: str) -> int:
        row = await self._run(lambda tx: tx.run("SELECT int_value FROM alipay_values WHERE name = ?",
                                                (name,)).fetchone())
        return int(row[0] or 0) if row else 0

    async def add(self, name: str, delta: int, expires: float | None = None) -> None:
        await self._run(lambda tx: tx.run(
            "INSERT INTO alipay_values (name, int_value, expires) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET int_value = alipay_values.int_value + excluded.int_value",
            (name, delta, expires)))

    async def raise_to(self, name: str, value: int) -> None:
        """Raise a value to ``value`` (never lowers it): a trade's refunded total, a notification's rank."""
        await self._run(lambda tx: tx.run(
            "INSERT INTO alipay_values (name, int_value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET "
            "int_value = excluded.int_value WHERE alipay_values.int_value < excluded.int_value", (name, value)))

    async def get_int(self, name: str, default: int = 0) -> int:
        row = await self._run(lambda tx: tx.run("SELECT int_value FROM alipay_values WHERE name = ?",
                                                (name,)).fetchone())
        return int(row[0]) if row and row[0] is not None else default

    async def put(self, name: str, text: str, ttl: float) -> None:
        now = time.time()
        self._writes += 1
        sweep = self._writes % self.SWEEP_EVERY == 0  # expired proposals and totals go now and then

        def work(tx: Tx) -> None:
            if sweep:
                tx.run("DELETE FROM alipay_values WHERE expires IS NOT NULL AND expires < ?", (now,))
            tx.run("INSERT INTO alipay_values (name, text_value, expires) VALUES (?, ?, ?) ON CONFLICT (name) DO "
                   "UPDATE SET text_value = excluded.text_value, expires = excluded.expires", (name, text, now + ttl))

        await self._run(work)

    async def take(self, name: str) -> str | None:
        """The value, deleted in the same transaction: only one taker ever gets it (None when expired)."""
        now = time.time()

        def work(tx: Tx) -> str | None:
            row = tx.run("DELETE FROM alipay_values WHERE name = ? RETURNING text_value, expires",
                         (name,)).fetchone()
            if row is None or (row[1] is not None and row[1] < now):
                return None
            return row[0]

        return await self._run(work)

    async def claim(self, name: str, ttl: float | None = None) -> bool:
        """True for the first claimant of ``name`` (None: kept for good, never dropped by a TTL)."""
        now = time.time()
        expires = None if ttl is None else now + ttl

        def work(tx: Tx) -> bool:
            tx.run("DELETE FROM alipay_values WHERE name = ? AND expires IS NOT NULL AND expires < ?", (name, now))
            return tx.run("INSERT INTO alipay_values (name, text_value, expires) VALUES (?, '1', ?) "
                          "ON CONFLICT (name) DO NOTHING", (name, expires)).rowcount == 1

        return await self._run(work)

    async def exists(self, name: str) -> bool:
        now = time.time()
        row = await self._run(lambda tx: tx.run(
            "SELECT 1 FROM alipay_values WHERE name = ? AND (expires IS NULL OR expires >= ?)",
            (name, now)).fetchone())
        return row is not None

    async def unclaim(self, name: str) -> None:
        await self._run(lambda tx: tx.run("DELETE FROM alipay_values WHERE name = ?", (name,)))


def _book(tx: Tx, hold: Hold, now: float) -> None:
    """Add a hold to its total unless the total would pass its cap (the UPDATE takes the row's lock)."""
    tx.run("INSERT INTO alipay_values (name, int_value, expires) VALUES (?, 0, ?) ON CONFLICT (name) DO NOTHING",
           (hold.name, hold.expires))
    passed = tx.run("UPDATE alipay_values SET int_value = int_value + ? WHERE name = ? AND int_value + ? <= ?",
                    (hold.cents, hold.name, hold.cents, hold.cap)).rowcount
    if passed != 1:
        current = tx.run("SELECT int_value FROM alipay_values WHERE name = ?", (hold.name,)).fetchone()
        used = int(current[0] or 0) if current else 0
        raise PolicyError(hold.setting, f"{hold.cents / 100:.2f} more would pass the cap of {hold.cap / 100:.2f} "
                                        f"({used / 100:.2f} already booked)")
