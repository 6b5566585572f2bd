"""The gateway door of the money ledger: one logical action-bearing request, one app, one outcome.

Why: each app's gateway deduplicates actions by ``out_request_no`` — within that app. When the Router
falls back from app A to app B after A executed a refund and the answer was lost, B would execute it
again. So an attempt opens the request's record in the durable ledger (``ledger/``) before it is sent,
naming its app and the request's fingerprint: a later attempt with another ``app_id`` is refused
(``ActionInDoubtError``) and the caller reconciles with A; a key reused for a *different* request
(another prompt, other actions) is refused, as Stripe refuses a reused idempotency key with other
parameters. The first answer is recorded before it returns, and every later attempt under the key is
answered from that record (each action ``replayed: true``, no fee, nothing sent) — never by asking the
model again. An attempt that provably never left (circuit open, quota, deadline before sending)
releases a record it created, so a healthy fallback is not refused.

The ledger is money state: when it cannot be reached the request is refused before anything is sent
(``LedgerUnavailableError``), whatever Redis or the gateway would have said.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import PROVIDER, AlipayError, local_error
from .ledger import Hold, IdempotencyKeyReusedError, ledger_for, request_id

__all__ = ["UNSENT_CODES", "ActionClaim", "Claim", "IdempotencyKeyReusedError", "Slot", "aholding", "holding"]


@dataclass(frozen=True)
class Claim:
    app_id: str
    out_request_no: str
    fingerprint: str = ""


@dataclass(frozen=True)
class ActionClaim:
    """One attempt's claim: the caller-scoped key (hashed in the ledger), the app and the fingerprint, and
    the day caps' holds the request books before it is sent (``backends/gateway_actions.py``)."""

    key: str = field(repr=False)
    claim: Claim
    holds: tuple[Hold, ...] = ()
    #: the ledger's id of the request, when a door keeps its actions under one of its own (the action loop:
    #: its toolkit's), so the record and its actions are one — else derived from ``key``
    request_id: str | None = field(default=None, repr=False)


#: ``alipay_code`` of failures that provably sent nothing: a record the attempt created is released.
UNSENT_CODES = frozenset({"client-quota", "circuit-open", "configuration", "local-overload", "LocalOverloadError",
                          "deadline-before-send", "tenant-mismatch", "data-residency", "ledger-unavailable",
                          "payment-policy"})


@dataclass
class Slot:
    """What the call does under its claim: ``replay`` is the recorded answer of an earlier attempt (then
    nothing is sent); otherwise the call sends and ``record``s its answer before returning it."""

    request_id: str = field(repr=False)
    replay: dict[str, Any] | None
    created: bool
    recorded: bool = False
    booked: tuple[Hold, ...] = ()

    async def record(self, node: dict[str, Any], executed_cents: int = 0) -> None:
        """The answer every later attempt is given, and the day caps' holds settled to what it moved."""
        ledger = ledger_for()
        await ledger.record_response(self.request_id, node)
        self.recorded = True
        await self._give_back(executed_cents)

    async def _give_back(self, kept_cents: int) -> None:
        booked, self.booked = self.booked, ()
        for hold in booked:
            give_back = hold.cents - min(kept_cents, hold.cents)
            if give_back:
                await ledger_for().add(hold.name, -give_back)


def replayed_node(node: dict[str, Any]) -> dict[str, Any]:
    """A recorded answer as a replay: each action marked, no tokens consumed by this attempt."""
    out = copy.deepcopy(node)
    out["actions"] = [{**action, "replayed": True} for action in out.get("actions") or []]
    out["usage"] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "input_chars": 0,
                    "output_chars": 0}
    out["replayed"] = True
    return out


@contextlib.asynccontextmanager
async def aholding(held: ActionClaim | None, model: str, lease: float = 330.0) -> AsyncIterator[Slot | None]:
    """Open (and take, for ``lease`` seconds) the request's record for this app around the call; release it
    if this attempt created it and nothing was sent, else give it back for the next attempt."""
    if held is None:
        yield None
        return
    rid = held.request_id or request_id("gateway", held.key)
    try:
        record = await ledger_for().open_request(rid, held.claim.app_id, held.claim.fingerprint,
                                                 number=held.claim.out_request_no, lease=lease)
    except AlipayError as exc:
        raise local_error(exc, model=model, provider=PROVIDER) from None
    slot = Slot(rid, replayed_node(record.response) if record.response else None, record.created)
    if record.created and held.holds:
        try:
            await ledger_for().book(held.holds)  # the day's caps, before anything leaves
        except AlipayError as exc:
            with contextlib.suppress(AlipayError):
                await ledger_for().release_request(rid)
            raise local_error(exc, model=model, provider=PROVIDER) from None
        slot.booked = held.holds
    try:
        yield slot
    except BaseException as exc:
        with contextlib.suppress(AlipayError):
            if record.created and not slot.recorded and getattr(exc, "alipay_code", None) in UNSENT_CODES:
                await slot._give_back(0)
                await ledger_for().release_request(rid)  # kept when actions were claimed under it
            if not slot.recorded:
                await ledger_for().unbusy(rid)  # the next attempt (a retry, a fallback) may take it now
        raise


@contextlib.contextmanager
def holding(held: ActionClaim | None, model: str, lease: float = 330.0) -> Iterator[Slot | None]:
    """``aholding`` driven from sync code (``transport/sync_driver.py``): one implementation."""
    if held is None:
        yield None
        return
    from .transport.sync_driver import SYNC

    manager = aholding(held, model, lease)
    slot = SYNC.run(manager.__aenter__())
    try:
        yield slot
    except BaseException as exc:
        SYNC.run(manager.__aexit__(type(exc), exc, exc.__traceback__))
        raise
    SYNC.run(manager.__aexit__(None, None, None))
