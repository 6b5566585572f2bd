"""What a deployment lets the toolkit do: read-only by default, money-moving actions by name, refund
caps per call, per logical request, per caller key per day and per app per day (totals in the durable
money ledger, booked in the same transaction as the action's claim), confirmation.

Refusals are ``PolicyError``: typed, naming the setting that refused and what would allow it, and
raised before anything is sent.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ..errors import ConfigurationError, PolicyError
from ..ledger import Hold
from ..wire.signing import BEIJING
from . import wire
from .agent.delegation_wire import MANDATE_ACTIONS
from .agent.mandate import MandatePolicy
from .store import SharedStore

#: tool name -> the method behind it
ACTIONS: dict[str, str] = {
    "query_payment": wire.QUERY, "query_refund": wire.REFUND_QUERY, "bill_download_url": wire.BILL_URL,
    "refund": wire.REFUND, "close_payment": wire.CLOSE, "cancel_payment": wire.CANCEL,
    "create_payment": wire.PRECREATE,
    **MANDATE_ACTIONS,  # Delegation Pay (payments/agent/): propose, status, pay under a mandate, cancel
}
READ_ONLY = frozenset({"query_payment", "query_refund", "bill_download_url", "mandate_status"})
_BY_METHOD = {method: name for name, method in ACTIONS.items()}


#: policy setting -> environment variable
POLICY_ENV = {
    "enabled_actions": "ALIPAY_PAYMENTS_ENABLED_ACTIONS", "refund_cap_per_call": "ALIPAY_PAYMENTS_REFUND_CAP_PER_CALL",
    "refund_cap_per_request": "ALIPAY_PAYMENTS_REFUND_CAP_PER_REQUEST",
    "refund_cap_per_key_per_day": "ALIPAY_PAYMENTS_REFUND_CAP_PER_KEY_PER_DAY",
    "refund_cap_per_day": "ALIPAY_PAYMENTS_REFUND_CAP_PER_DAY", "confirm": "ALIPAY_PAYMENTS_CONFIRM",
}
_CAPS = ("refund_cap_per_call", "refund_cap_per_request", "refund_cap_per_key_per_day", "refund_cap_per_day")


def setting_name(name: str) -> str:
    """How a refusal names a policy setting: its mapping key and its environment variable."""
    return f"payments.{name} ({POLICY_ENV[name]})"


def _cap(name: str, value: Any) -> int | None:
    return None if value in (None, "") else wire.cents(wire.amount(value, name))


@dataclass(frozen=True)
class PaymentPolicy:
    """The payment settings of one deployment (``payments_*`` keys in ``from_mapping``)."""

    enabled_actions: frozenset[str] = READ_ONLY
    refund_cap_per_call: int | None = None  # cents, one action
    refund_cap_per_request: int | None = None  # cents, every action of one logical request together
    refund_cap_per_key_per_day: int | None = None  # cents, per caller (proxy key) and Beijing day
    refund_cap_per_day: int | None = None  # cents, per app and Beijing day
    confirm: bool = False
    #: Delegation Pay: the operator's mandate constraints and settings (``ALIPAY_MANDATE_*``)
    mandate: MandatePolicy = MandatePolicy()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PaymentPolicy:
        """From ``enabled_actions`` (names or method names), the ``refund_cap_*`` caps (yuan) and
        ``confirm``; unknown keys are refused."""
        known = {"enabled_actions", "confirm", "mandate", *_CAPS}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigurationError(f"payments.{unknown[0]}", f"is not a payment setting ({', '.join(sorted(known))})")
        return cls(
            enabled_actions=enabled(data.get("enabled_actions") or ()),
            **{name: _cap(setting_name(name), data.get(name)) for name in _CAPS},
            confirm=bool(data.get("confirm", False)),
            mandate=MandatePolicy.from_mapping(data.get("mandate") or {}),
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PaymentPolicy:
        """From ``ALIPAY_PAYMENTS_*`` variables (``ENABLED_ACTIONS`` comma-separated, the ``REFUND_CAP_*``
        caps, ``CONFIRM``): deployment settings only."""
        import os

        env = os.environ if env is None else env
        data: dict[str, Any] = {name: env.get(var) for name, var in POLICY_ENV.items() if env.get(var)}
        if "confirm" in data:
            data["confirm"] = str(data["confirm"]).strip().lower() in ("1", "true", "yes", "on")
        return replace(cls.from_mapping(data), mandate=MandatePolicy.from_env(env))

    def check_enabled(self, action: str) -> None:
        if action not in self.enabled_actions:
            raise PolicyError(setting_name("enabled_actions"),
                              f"the action {action!r} is not enabled for this deployment (read-only by default)")

    def check_call_cap(self, amount_cents: int) -> None:
        if self.refund_cap_per_call is not None and amount_cents > self.refund_cap_per_call:
            raise PolicyError(setting_name("refund_cap_per_call"),
                              f"a refund of {wire.yuan(amount_cents)} exceeds the per-call cap of "
                              f"{wire.yuan(self.refund_cap_per_call)}")

    def check_refund(self, amount_cents: int, refundable_cents: int) -> None:
        """Per-call cap and refundable balance (the daily cap is reserved separately, atomically)."""
        self.check_call_cap(amount_cents)
        if amount_cents > refundable_cents:
            raise PolicyError("refund_amount",
                              f"a refund of {wire.yuan(amount_cents)} exceeds the refundable balance of "
                              f"{wire.yuan(refundable_cents)}")

    def holds(self, app_id: str, caller: str, request_id: str, amount_cents: int) -> list[Hold]:
        """The cap totals one refund books in the ledger with its claim (all or none, one transaction)."""
        now, day = time.time(), beijing_day()
        named = (("refund_cap_per_request", f"payments:request:{request_id}", now + 30 * 86400),
                 ("refund_cap_per_key_per_day", f"payments:caller-day:{caller}:{day}", now + 2 * 86400),
                 ("refund_cap_per_day", f"payments:app-day:{app_id}:{day}", now + 2 * 86400))
        return [Hold(total, amount_cents, cap, setting_name(name), expires)
                for name, total, expires in named if (cap := getattr(self, name)) is not None]


def enabled(names: Iterable[str] | str) -> frozenset[str]:
    """The read-only actions plus ``names`` (tool names or method names), each checked."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    out = set(READ_ONLY)
    for name in names:
        action = name if name in ACTIONS else _BY_METHOD.get(name)
        if action is None:
            raise ConfigurationError("payments.enabled_actions",
                                     f"{name!r} is not an action ({', '.join(sorted(ACTIONS))})")
        out.add(action)
    return frozenset(out)


# ---------------------------------------------------------------------------------- daily totals
def beijing_day() -> str:
    return datetime.now(BEIJING).strftime("%Y-%m-%d")


class RefundBook:
    """Each trade's refunded total as Alipay reported it (Alipay's trade query does not report refunds,
    so the refundable balance is total − this), in the durable ledger so every worker sees one total.
    (The caps' totals are the policy's ``holds``, booked with each refund's claim.)"""

    def __init__(self, store: SharedStore) -> None:
        self.store = store

    async def refunded(self, app_id: str, trade: str) -> int:
        """The trade's cumulative refunded amount as Alipay last reported it (``refund_fee``)."""
        return await self.store.hget_int(f"trade-refunded:{app_id}", trade)

    async def record_refunded(self, app_id: str, trade: str, refund_fee_cents: int) -> None:
        """Remember the cumulative ``refund_fee`` of a refund answer (it only grows)."""
        await self.store.hmax(f"trade-refunded:{app_id}", trade, refund_fee_cents)
