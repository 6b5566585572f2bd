"""The mandate on our side: its record in the durable ledger and the checks made before anything is sent.

Alipay enforces a mandate; so do we, from our own record (table ``alipay_mandates``), refreshed from
``alipay.user.agreement.delegation.query`` when it is unknown (never synced, still ``SIGNING``) or older
than ``refresh_seconds``: state ``NORMAL``, now inside the validity window, the amount within what remains,
a payment left. A terminal state (``FINISHED``, ``CANCELLED``, ``EXPIRED``, ``TERMINATE``, ``INVALID``) is
final here even if a later answer says otherwise — an unsign notification stops payments at once.

Beyond Alipay's fields, the operator's constraints (AP2's payment-mandate spirit), per deployment
(``MandatePolicy``: ``ALIPAY_MANDATE_*``) and per mandate (stored with it at proposal, never from the
model): a per-payment amount range, allowed merchants and goods, at most N payments per Beijing day. The
strictest of both applies. Refusals are ``PolicyError`` naming what refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from ...errors import ConfigurationError, PolicyError
from ...ledger import Hold, Ledger
from ...ledger.engine import Tx
from ...wire.signing import BEIJING
from .. import wire
from . import delegation_wire as dw

#: policy setting -> environment variable
MANDATE_ENV = {
    "amount_min": "ALIPAY_MANDATE_AMOUNT_MIN", "amount_max": "ALIPAY_MANDATE_AMOUNT_MAX",
    "allowed_merchants": "ALIPAY_MANDATE_ALLOWED_MERCHANTS", "allowed_goods": "ALIPAY_MANDATE_ALLOWED_GOODS",
    "max_payments_per_day": "ALIPAY_MANDATE_MAX_PAYMENTS_PER_DAY", "refresh_seconds": "ALIPAY_MANDATE_REFRESH_SECONDS",
    "agent_id": "ALIPAY_MANDATE_AGENT_ID", "notify_url": "ALIPAY_MANDATE_NOTIFY_URL",
}
_CONSTRAINTS = ("amount_min", "amount_max", "allowed_merchants", "allowed_goods", "max_payments_per_day")


def setting_name(name: str) -> str:
    return f"payments.mandate.{name} ({MANDATE_ENV[name]})"


def _names(value: Any, name: str) -> frozenset[str] | None:
    if value in (None, ""):
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise ConfigurationError(setting_name(name), "must be a list of names (or a comma-separated string)")
    return frozenset(str(item).strip() for item in items if str(item).strip())


@dataclass(frozen=True)
class MandatePolicy:
    """The operator's mandate settings: constraints (per deployment here, or per mandate at proposal),
    how stale a record may be before it is refreshed, the ``agent_id`` sent at apply and the payment
    notifications' ``notify_url``."""

    amount_min: int | None = None  # cents, one payment
    amount_max: int | None = None  # cents, one payment
    allowed_merchants: frozenset[str] | None = None  # seller_id values a payment may name
    allowed_goods: frozenset[str] | None = None  # goods_id values a payment may name
    max_payments_per_day: int | None = None  # per mandate and Beijing day
    refresh_seconds: float = 60.0
    agent_id: str | None = None  # default: the app id
    notify_url: str | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> MandatePolicy:
        unknown = sorted(set(data) - set(MANDATE_ENV))
        if unknown:
            raise ConfigurationError(f"payments.mandate.{unknown[0]}",
                                     f"is not a mandate setting ({', '.join(sorted(MANDATE_ENV))})")

        def cents(name: str) -> int | None:
            value = data.get(name)
            return None if value in (None, "") else wire.cents(wire.amount(value, setting_name(name)))

        per_day = data.get("max_payments_per_day")
        refresh = data.get("refresh_seconds")
        try:
            refresh_seconds = 60.0 if refresh in (None, "") else float(refresh)
        except (TypeError, ValueError):
            raise ConfigurationError(setting_name("refresh_seconds"), "must be a number of seconds") from None
        if refresh_seconds < 0:
            raise ConfigurationError(setting_name("refresh_seconds"), "must not be negative")
        policy = cls(cents("amount_min"), cents("amount_max"),
                     _names(data.get("allowed_merchants"), "allowed_merchants"),
                     _names(data.get("allowed_goods"), "allowed_goods"),
                     None if per_day in (None, "") else dw.times(per_day, setting_name("max_payments_per_day")),
                     refresh_seconds, str(data["agent_id"]) if data.get("agent_id") else None,
                     str(data["notify_url"]) if data.get("notify_url") else None)
        if policy.amount_min and policy.amount_max and policy.amount_min > policy.amount_max:
            raise ConfigurationError(setting_name("amount_min"), "must not be above amount_max")
        return policy

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MandatePolicy:
        env = os.environ if env is None else env
        return cls.from_mapping({name: env[var] for name, var in MANDATE_ENV.items() if env.get(var)})

    def constraints(self) -> dict[str, Any]:
        """The constraint fields only (what a mandate stores), JSON-ready."""
        out: dict[str, Any] = {}
        for name in _CONSTRAINTS:
            value = getattr(self, name)
            if value is None:
                continue
            out[name] = sorted(value) if isinstance(value, frozenset) else \
                wire.yuan(value) if name.startswith("amount_") else value  # as from_mapping reads them
        return out

    def strictest(self, other: MandatePolicy) -> MandatePolicy:
        """Both sets of constraints at once (the tighter bound of each, the common names of each list)."""
        def low(a: int | None, b: int | None) -> int | None:
            return b if a is None else a if b is None else min(a, b)

        def high(a: int | None, b: int | None) -> int | None:
            return b if a is None else a if b is None else max(a, b)

        def common(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
            return b if a is None else a if b is None else a & b

        return replace(self, amount_min=high(self.amount_min, other.amount_min),
                       amount_max=low(self.amount_max, other.amount_max),
                       allowed_merchants=common(self.allowed_merchants, other.allowed_merchants),
                       allowed_goods=common(self.allowed_goods, other.allowed_goods),
                       max_payments_per_day=low(self.max_payments_per_day, other.max_payments_per_day))


@dataclass(frozen=True)
class Mandate:
    """Our record of one mandate (a delegation task); ``mandate_id`` is its ``external_delegation_id``."""

    mandate_id: str
    app_id: str
    owner: str = field(repr=False)
    request_id: str = field(repr=False)
    external_agreement_no: str
    agreement_no: str | None
    delegation_id: str | None
    status: str
    max_total_cents: int
    times_limit: int | None
    remaining_cents: int
    remaining_times: int | None
    validity_start: str  # yyyy-MM-dd HH:mm:ss, Beijing
    validity_end: str
    description: str
    tag: str | None
    constraints: dict[str, Any]
    synced: float | None

    def policy(self) -> MandatePolicy:
        return MandatePolicy.from_mapping(self.constraints)

    def public(self) -> dict[str, Any]:
        """What a model (and the caller) is told about it: no owner, no key."""
        out: dict[str, Any] = {
            "mandate_id": self.mandate_id, "status": self.status, "max_total_amount": wire.yuan(self.max_total_cents),
            "remaining_amount": wire.yuan(self.remaining_cents), "validity_start_time": self.validity_start,
            "validity_end_time": self.validity_end, "delegation_desc": self.description}
        if self.times_limit is not None:
            out["times_limit"] = str(self.times_limit)
        if self.remaining_times is not None:
            out["remaining_times"] = str(self.remaining_times)
        if self.tag:
            out["delegation_tag"] = self.tag
        if self.agreement_no:
            out["agreement_no"] = self.agreement_no
        if self.delegation_id:
            out["delegation_id"] = self.delegation_id
        if self.constraints:
            out["constraints"] = self.constraints
        return out


_COLUMNS = ("mandate_id, app_id, owner, request_id, external_agreement_no, agreement_no, delegation_id, status, "
            "max_total_cents, times_limit, remaining_cents, remaining_times, validity_start, validity_end, "
            "description, tag, constraints, synced")


def _mandate(row: Sequence[Any]) -> Mandate:
    values = list(row)
    values[16] = json.loads(values[16] or "{}")
    return Mandate(*values)


def owner_of(scope: str) -> str:
    """Who a mandate belongs to: the hash of the caller scope that proposed it."""
    return hashlib.sha256(("mandate-owner\x1f" + scope).encode()).hexdigest()


def beijing_now(clock: float | None = None) -> datetime:
    return datetime.fromtimestamp(time.time() if clock is None else clock, BEIJING)


class MandateBook:
    """The mandates in the durable ledger (one transaction per operation, ``Ledger.transact``)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def create(self, m: Mandate) -> tuple[Mandate, bool]:
        """``(the record, True)`` when created now; ``(the existing one, False)`` when the id exists."""
        now = time.time()

        def work(tx: Tx) -> tuple[Mandate, bool]:
            values = list(asdict(m).values())
            values[16] = json.dumps(m.constraints, sort_keys=True)
            created = tx.run(f"INSERT INTO alipay_mandates ({_COLUMNS}, created, updated) VALUES "
                             f"({', '.join('?' * 20)}) ON CONFLICT (mandate_id) DO NOTHING",
                             (*values, now, now)).rowcount == 1
            return _fetch(tx, m.mandate_id), created

        return await self.ledger.transact(work)

    async def get(self, mandate_id: str, owner: str | None = None) -> Mandate | None:
        """The mandate, or None — also when ``owner`` is given and is not its owner (no existence leak)."""
        found = await self.ledger.transact(lambda tx: _fetch(tx, mandate_id))
        return found if found is not None and (owner is None or found.owner == owner) else None

    async def by_agreement(self, app_id: str, agreement_no: str | None = None,
                           external_agreement_no: str | None = None) -> list[Mandate]:
        where, params = _either(("agreement_no", agreement_no), ("external_agreement_no", external_agreement_no))
        if not params:
            return []

        def work(tx: Tx) -> list[Mandate]:
            rows = tx.run(f"SELECT {_COLUMNS} FROM alipay_mandates WHERE app_id = ? AND ({where})",
                          (app_id, *params)).fetchall()
            return [_mandate(r) for r in rows]

        return await self.ledger.transact(work)

    async def by_delegation(self, app_id: str, delegation_id: str | None,
                            external_delegation_id: str | None) -> Mandate | None:
        where, params = _either(("delegation_id", delegation_id), ("mandate_id", external_delegation_id))
        if not params:
            return None

        def work(tx: Tx) -> Mandate | None:
            row = tx.run(f"SELECT {_COLUMNS} FROM alipay_mandates WHERE app_id = ? AND ({where})",
                         (app_id, *params)).fetchone()
            return _mandate(row) if row else None

        return await self.ledger.transact(work)

    async def sync(self, mandate_id: str, node: Mapping[str, Any]) -> Mandate:
        """Apply a verified query answer. A terminal state already recorded is kept (never revived)."""
        now = time.time()

        def work(tx: Tx) -> Mandate:
            current = _fetch(tx, mandate_id)
            assert current is not None
            status = str(node.get("status") or current.status)
            if current.status in dw.TERMINAL:
                status = current.status
            times_left = node.get("remaining_times")
            tx.run("UPDATE alipay_mandates SET status = ?, agreement_no = COALESCE(?, agreement_no), "
                   "delegation_id = COALESCE(?, delegation_id), remaining_cents = ?, remaining_times = ?, "
                   "validity_start = ?, validity_end = ?, synced = ?, updated = ? WHERE mandate_id = ?",
                   (status, node.get("agreement_no") or None, node.get("delegation_id") or None,
                    dw.cents_of(node.get("remaining_amount")) if node.get("remaining_amount") not in (None, "")
                    else current.remaining_cents,
                    int(times_left) if str(times_left or "").isdigit() else current.remaining_times,
                    node.get("validity_start_time") or current.validity_start,
                    node.get("validity_end_time") or current.validity_end, now, now, mandate_id))
            found = _fetch(tx, mandate_id)
            assert found is not None
            return found

        return await self.ledger.transact(work)

    async def set_status(self, mandate_id: str, status: str, *, agreement_no: str | None = None,
                         delegation_id: str | None = None) -> Mandate | None:
        """A state from a notification or a cancel; a terminal state is never left."""
        now = time.time()

        def work(tx: Tx) -> Mandate | None:
            current = _fetch(tx, mandate_id)
            if current is None:
                return None
            new = current.status if current.status in dw.TERMINAL else status
            tx.run("UPDATE alipay_mandates SET status = ?, agreement_no = COALESCE(?, agreement_no), "
                   "delegation_id = COALESCE(?, delegation_id), updated = ? WHERE mandate_id = ?",
                   (new, agreement_no, delegation_id, now, mandate_id))
            return _fetch(tx, mandate_id)

        return await self.ledger.transact(work)

    async def forget_sync(self, mandate_id: str) -> None:
        """Alipay refused a payment for the mandate's sake: the next payment refreshes the record first."""
        await self.ledger.transact(lambda tx: tx.run("UPDATE alipay_mandates SET synced = NULL WHERE mandate_id = ?",
                                                     (mandate_id,)))

    async def paid(self, mandate_id: str, cents: int) -> Mandate:
        """A payment that succeeded: what remains goes down at once (FINISHED when used up)."""
        now = time.time()

        def work(tx: Tx) -> Mandate:
            tx.run("UPDATE alipay_mandates SET remaining_cents = CASE WHEN remaining_cents > ? "
                   "THEN remaining_cents - ? ELSE 0 END WHERE mandate_id = ?", (cents, cents, mandate_id))
            tx.run("UPDATE alipay_mandates SET remaining_times = remaining_times - 1 WHERE mandate_id = ? AND "
                   "remaining_times > 0", (mandate_id,))
            tx.run("UPDATE alipay_mandates SET status = ?, updated = ? WHERE mandate_id = ? AND status = ? AND "
                   "(remaining_cents = 0 OR remaining_times = 0)", (dw.FINISHED, now, mandate_id, dw.NORMAL))
            found = _fetch(tx, mandate_id)
            assert found is not None
            return found

        return await self.ledger.transact(work)


def _either(*pairs: tuple[str, str | None]) -> tuple[str, list[str]]:
    """``col = ? OR col = ?`` over the columns whose value is given (column names are ours, never input)."""
    given = [(column, value) for column, value in pairs if value]
    return " OR ".join(f"{column} = ?" for column, _ in given), [value for _, value in given]


def _fetch(tx: Tx, mandate_id: str) -> Mandate | None:
    row = tx.run(f"SELECT {_COLUMNS} FROM alipay_mandates WHERE mandate_id = ?", (mandate_id,)).fetchone()
    return _mandate(row) if row else None


# ------------------------------------------------------------------------------------- the checks
def stale(m: Mandate, policy: MandatePolicy, now: float | None = None) -> bool:
    """Whether the record must be refreshed from query before it decides a payment."""
    if m.status in dw.TERMINAL:
        return False
    if m.status == dw.SIGNING or m.synced is None or not m.agreement_no or not m.delegation_id:
        return True
    return (time.time() if now is None else now) - m.synced > policy.refresh_seconds


def check_payable(m: Mandate, cents: int, policy: MandatePolicy, *, now: datetime, goods_id: str | None = None,
                  seller_id: str | None = None) -> None:
    """Refuse (``PolicyError``) a payment the mandate or the operator's constraints do not allow."""
    if m.status != dw.NORMAL:
        why = {dw.SIGNING: "the user has not approved it yet", dw.FINISHED: "its amount or count is used up",
               dw.CANCELLED: "it was cancelled", dw.EXPIRED: "its validity ended",
               dw.TERMINATE: "the user terminated the agreement", dw.INVALID: "the user refused it"}
        raise PolicyError("mandate.status", f"the mandate is {m.status} ({why.get(m.status, 'not active')}); "
                                            "nothing was sent")
    start, end = dw.parse_stamp(m.validity_start), dw.parse_stamp(m.validity_end)
    if start is None or end is None or not start <= now < end:
        raise PolicyError("mandate.validity", f"now ({dw.stamp(now)}) is outside the mandate's validity "
                                              f"[{m.validity_start}, {m.validity_end}); nothing was sent")
    if cents > m.remaining_cents:
        raise PolicyError("mandate.remaining_amount", f"a payment of {wire.yuan(cents)} exceeds what remains of the "
                                                      f"mandate ({wire.yuan(m.remaining_cents)}); nothing was sent")
    if m.remaining_times is not None and m.remaining_times <= 0:
        raise PolicyError("mandate.remaining_times", "the mandate has no payment left; nothing was sent")
    if policy.amount_min is not None and cents < policy.amount_min:
        raise PolicyError(setting_name("amount_min"), f"a payment of {wire.yuan(cents)} is below the minimum of "
                                                      f"{wire.yuan(policy.amount_min)}")
    if policy.amount_max is not None and cents > policy.amount_max:
        raise PolicyError(setting_name("amount_max"), f"a payment of {wire.yuan(cents)} is above the maximum of "
                                                      f"{wire.yuan(policy.amount_max)}")
    if policy.allowed_merchants is not None and seller_id not in policy.allowed_merchants:
        raise PolicyError(setting_name("allowed_merchants"),
                          f"the merchant {seller_id!r} is not one this mandate may pay")
    if policy.allowed_goods is not None and goods_id not in policy.allowed_goods:
        raise PolicyError(setting_name("allowed_goods"),
                          f"the goods {goods_id!r} are not ones this mandate may buy")


def holds(m: Mandate, cents: int, policy: MandatePolicy, day: str) -> list[Hold]:
    """The totals one payment books with its claim (one transaction): our own spend and count under the
    mandate, and the day's count — so two concurrent payments cannot both pass a limit."""
    base = f"payments:mandate:{m.mandate_id}"
    out = [Hold(f"{base}:amount", cents, m.max_total_cents, "mandate.max_total_amount")]
    if m.times_limit is not None:
        out.append(Hold(f"{base}:times", 1, m.times_limit, "mandate.times_limit"))
    if policy.max_payments_per_day is not None:
        out.append(Hold(f"{base}:day:{day}", 1, policy.max_payments_per_day, setting_name("max_payments_per_day"),
                        time.time() + 2 * 86400))
    return out
