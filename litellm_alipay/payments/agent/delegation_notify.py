"""Delegation Pay's notifications, verified and applied once: sign, unsign, task status, payment result.

The application gateway receives ``dut_user_sign`` (the user approved: the mandate becomes ``NORMAL``
with Alipay's ``agreement_no`` and ``delegation_id``), ``dut_user_unsign`` (the user ended the agreement:
every mandate under it becomes ``TERMINATE`` at once, so the next payment is refused before anything is
sent) and ``dut_delegation_status_change`` (``FINISHED``, ``CANCELLED``, ``EXPIRED``, …). Each is trusted
only when its signature verifies with the Alipay public key (``payments.wire.verify_notify``, as trade
notifications) and its ``app_id`` is ours, and is applied once per ``notify_id`` (claimed in the ledger,
kept for good). A terminal state is never left. Payment-result notifications (``trade_status_sync``)
go to the trade notifications' verifier (``payments.notify.NotifyVerifier``) when one is given.

The answer to Alipay is ``success`` once handled (a duplicate or an unknown mandate included), anything
else makes Alipay re-send.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ...errors import AlipayError
from ...ledger import Ledger, ledger_for
from ...wire.signing import KeyText, PublicKey, load_public_key
from .. import wire
from ..audit import AuditLog
from ..notify import NotifyVerifier, form_post_app
from . import delegation_wire as dw
from .mandate import Mandate, MandateBook

_STATES = frozenset({dw.NORMAL, *dw.TERMINAL})


class DelegationNotifications:
    """Applies one app's Delegation Pay notifications to its mandates."""

    def __init__(self, alipay_public_key: KeyText | PublicKey, app_id: str, *, ledger: Ledger | None = None,
                 audit: AuditLog | None = None, trades: NotifyVerifier | None = None) -> None:
        self._key = load_public_key(alipay_public_key, "alipay_public_key") \
            if isinstance(alipay_public_key, (str, bytes)) else alipay_public_key
        self.app_id = app_id
        self._ledger = ledger
        self.audit = audit
        self.trades = trades

    @classmethod
    def for_toolkit(cls, toolkit: Any, *, trades: NotifyVerifier | None = None) -> DelegationNotifications:
        """For a ``PaymentToolkit``: its app, Alipay key, ledger and audit trail."""
        key = toolkit.settings.response_key
        key = key(None) if callable(key) else key  # certificate mode: the current Alipay certificate
        return cls(key, toolkit.settings.app_id, ledger=toolkit.store.ledger, audit=toolkit.audit, trades=trades)

    @property
    def ledger(self) -> Ledger:
        return self._ledger or ledger_for()

    async def ahandle(self, params: Mapping[str, str]) -> str:
        """Verify, apply once, audit: the exact text to answer Alipay with."""
        params = dict(params)
        kind = params.get("notify_type") or ""
        if not kind.startswith("dut_"):
            if self.trades is not None:
                return await self.trades.ahandle(params)
            self._audit(params, "rejected", reason="notify_type: not a delegation notification")
            return "failure"
        problem = self._problem(params)
        if problem:
            self._audit(params, "rejected", reason=problem)
            return "failure"
        seen = f"payments:delegation-notify-seen:{self.app_id}:{params['notify_id']}"
        if not await self.ledger.claim(seen):
            self._audit(params, "duplicate")
            return "success"
        try:
            touched = await self._apply(kind, params)
        except AlipayError as exc:  # the ledger is down: Alipay must re-send
            await self.ledger.unclaim(seen)
            self._audit(params, "apply_failed", reason=type(exc).__name__)
            return "failure"
        self._audit(params, "applied" if touched else "unknown_mandate",
                    mandates=[m.mandate_id for m in touched] or None,
                    status=touched[0].status if touched else params.get("status"))
        return "success"

    def _problem(self, params: Mapping[str, str]) -> str | None:
        if not wire.verify_notify(params, self._key):
            return "sign: the signature does not verify"
        if params.get("app_id") != self.app_id:
            return "app_id: the notification is for another app"
        if not params.get("notify_id"):
            return "notify_id: is required"
        return None

    async def _apply(self, kind: str, params: Mapping[str, str]) -> list[Mandate]:
        book = MandateBook(self.ledger)
        agreement_no, external_agreement = params.get("agreement_no"), params.get("external_agreement_no")
        if kind == dw.UNSIGN_NOTIFY:
            found = await book.by_agreement(self.app_id, agreement_no, external_agreement)
            return [m for m in [await book.set_status(m.mandate_id, dw.TERMINATE) for m in found] if m]
        mandate = await book.by_delegation(self.app_id, params.get("delegation_id"),
                                           params.get("external_delegation_id"))
        if mandate is None and kind == dw.SIGN_NOTIFY and external_agreement:
            under = await book.by_agreement(self.app_id, None, external_agreement)
            mandate = under[0] if len(under) == 1 else None
        if mandate is None:
            return []
        status = params.get("status") or (dw.NORMAL if kind == dw.SIGN_NOTIFY else "")
        if status not in _STATES:
            return [mandate]  # a state we do not know: acknowledged, the next query tells
        updated = await book.set_status(mandate.mandate_id, status, agreement_no=agreement_no or None,
                                        delegation_id=params.get("delegation_id") or None)
        return [updated] if updated else []

    def _audit(self, params: Mapping[str, str], result: str, **fields: Any) -> None:
        if self.audit is not None:
            self.audit.write("notify", app=params.get("app_id"), action=params.get("notify_type") or "notify",
                             result=result, notify_id=params.get("notify_id"),
                             agreement_no=params.get("agreement_no"), delegation_id=params.get("delegation_id"),
                             **{k: v for k, v in fields.items() if v is not None})


def delegation_notify_app(handler: DelegationNotifications) -> Callable[..., Awaitable[None]]:
    """A minimal ASGI app for the application gateway: ``POST`` (any path) → ``success`` / ``failure``, the
    body bounded as the trade notifications' receiver bounds it (one receiver: ``notify.form_post_app``)."""
    return form_post_app(handler.ahandle)
