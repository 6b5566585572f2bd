"""The payment actions the Alipay AI gateway executes itself (B5), kept within the operator's limits.

The gateway executes ``allowed_actions`` on its side; what this side owns is the money policy around
them: the limits sent with each request (``max_action_amount``, ``max_total_amount`` — the gateway then
refuses an action above them with ``AI.ACTION_LIMIT_EXCEEDED``), the day's caps booked in the durable
money ledger before the request leaves (the request's ``max_total_amount`` is held; what was not
executed is given back after the answer), and a check of every returned action against the limits: an
executed action above them means the gateway did not keep them — an alert-level log line and an audit
line, never silence. Every executed action leaves an audit line (``ALIPAY_AUDIT_LOG``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import AlipayError
from ..ledger import Hold
from ..settings import AlipaySettings

log = logging.getLogger("litellm_alipay")
AUDIT_ENV = "ALIPAY_AUDIT_LOG"


def _yuan(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def limits(settings: AlipaySettings) -> dict[str, str]:
    """The B5 limit fields of an action-bearing request, from the deployment's settings."""
    out = {}
    if settings.max_action_amount is not None:
        out["max_action_amount"] = _yuan(settings.max_action_amount)
    if settings.max_total_amount is not None:
        out["max_total_amount"] = _yuan(settings.max_total_amount)
    return out


def holds(settings: AlipaySettings, caller: str) -> tuple[Hold, ...]:
    """What one request books against the day's caps before it is sent: its ``max_total_amount``."""
    from ..payments.policy import beijing_day

    total = settings.max_total_amount
    if total is None:
        return ()
    day, expires = beijing_day(), time.time() + 2 * 86400
    found = []
    if settings.action_cap_per_day is not None:
        found.append(Hold(f"gateway:app-day:{settings.app_id}:{day}", total, settings.action_cap_per_day,
                          "action_cap_per_day (ALIPAY_ACTION_CAP_PER_DAY)", expires))
    if settings.action_cap_per_key_per_day is not None:
        found.append(Hold(f"gateway:caller-day:{settings.app_id}:{caller}:{day}", total,
                          settings.action_cap_per_key_per_day,
                          "action_cap_per_key_per_day (ALIPAY_ACTION_CAP_PER_KEY_PER_DAY)", expires))
    return tuple(found)


def cents(value: Any) -> int | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return int(amount * 100) if amount.is_finite() else None


def executed_cents(actions: Iterable[Mapping[str, Any]] | None) -> int:
    """The amount the answer's actions moved (``SUCCESS``; an amount that cannot be read counts as unknown
    and is reported by ``check``)."""
    return sum(cents(a.get("amount")) or 0 for a in actions or () if isinstance(a, Mapping)
               and a.get("status") == "SUCCESS")


def check(settings: AlipaySettings, actions: Iterable[Mapping[str, Any]] | None, *, model: str,
          trace_id: str | None) -> list[str]:
    """Problems with executed actions against the limits (each logged as an alert and audited)."""
    problems = []
    moved = [a for a in actions or () if isinstance(a, Mapping) and a.get("status") == "SUCCESS"]
    for action in moved:
        amount = cents(action.get("amount"))
        if amount is None:
            problems.append(f"executed action {action.get('action')} has no readable amount")
        elif settings.max_action_amount is not None and amount > settings.max_action_amount:
            problems.append(f"executed action {action.get('action')} of {_yuan(amount)} is above max_action_amount "
                            f"{_yuan(settings.max_action_amount)}")
    total = executed_cents(moved)
    if settings.max_total_amount is not None and total > settings.max_total_amount:
        problems.append(f"executed actions total {_yuan(total)}, above max_total_amount "
                        f"{_yuan(settings.max_total_amount)}")
    for problem in problems:
        log.error("ALERT payment actions beyond the deployment's limits: %s (app %s, model %s, trace_id %s)",
                  problem, settings.app_id, model, trace_id)
    return problems


def audit(settings: AlipaySettings, actions: Iterable[Mapping[str, Any]] | None, *, model: str,
          trace_id: str | None, problems: list[str], replayed: bool = False) -> None:
    """One audit line per action the answer reports (``ALIPAY_AUDIT_LOG``), and one per limit problem."""
    path = os.environ.get(AUDIT_ENV)
    if not path:
        return
    from ..payments.audit import AuditLog

    try:
        _write(AuditLog(path), settings, actions, model=model, trace_id=trace_id, problems=problems,
               replayed=replayed)
    except (OSError, AlipayError) as exc:  # the money is recorded in the ledger; the trail is not the call
        log.error("ALERT audit trail %s not written for app %s (trace_id %s): %s", AUDIT_ENV, settings.app_id,
                  trace_id, type(exc).__name__)


def audit_attempt(settings: AlipaySettings, held: Any, *, model: str) -> None:
    """The ``attempt`` line before an action-bearing request leaves: there is one even when its answer is
    lost or the process dies before it comes back."""
    _line("attempt", settings, model=model, out_request_no=held.claim.out_request_no if held else None,
          max_total_amount=limits(settings).get("max_total_amount"))


def audit_replay(settings: AlipaySettings, held: Any, node: Mapping[str, Any], *, model: str) -> None:
    """A ``replay`` line per action of a recorded answer given again (nothing sent)."""
    audit(settings, node.get("actions"), model=model, trace_id=node.get("trace_id"), problems=[], replayed=True)


def _line(event: str, settings: AlipaySettings, *, model: str, **fields: Any) -> None:
    path = os.environ.get(AUDIT_ENV)
    if not path or fields.get("out_request_no") is None:
        return
    from ..payments.audit import AuditLog

    try:
        AuditLog(path).write(event, app=settings.app_id, action="gateway_actions", method="alipay.cloud.ai.chat",
                             model=model, door="gateway", **fields)
    except (OSError, AlipayError) as exc:
        log.error("ALERT audit trail %s not written for app %s: %s", AUDIT_ENV, settings.app_id,
                  type(exc).__name__)


def _write(trail: Any, settings: AlipaySettings, actions: Iterable[Mapping[str, Any]] | None, *, model: str,
           trace_id: str | None, problems: list[str], replayed: bool) -> None:
    for action in actions or ():
        if isinstance(action, Mapping):
            trail.write("replay" if replayed else "outcome", app=settings.app_id, action=action.get("action"),
                        method="alipay.cloud.ai.chat", result=str(action.get("status") or "").lower(),
                        out_request_no=action.get("out_request_no"), trade_no=action.get("trade_no"),
                        amount=action.get("amount"), sub_code=action.get("error_code"), trace_id=trace_id,
                        model=model, door="gateway")
    for problem in problems:
        trail.write("alert", app=settings.app_id, action="limit", result="exceeded", reason=problem,
                    trace_id=trace_id, model=model, door="gateway")
