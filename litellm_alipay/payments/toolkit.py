"""The toolkit: a payment action run through the policy, at most once, audited.

``arun(action, args, idempotency_key=…)`` is the one async implementation; ``run`` drives it from sync
code. A refund goes: policy (enabled, per-call cap) → refund query under its derived request number
(an earlier attempt may have committed) → trade query (state, total; refundable = total − refunded)
→ optional two-phase confirmation → daily-cap reservation → audit line → the refund → on an unknown
outcome, the refund query again before answering (and at most ``max_sends`` sends with the same
number) → audit line → the answer. Nothing here trusts the model with a request number.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ConfigurationError
from ..ledger import FAILED, FINAL, SUCCEEDED, UNKNOWN, ActionRow, IdempotencyKeyReusedError, Ledger, request_id
from ..settings import AlipaySettings
from . import wire
from ._sync import run_sync
from .agent.delegation_actions import MANDATE_ACTIONS, MandateDesk
from .audit import AuditLog
from .classify import ResultClass
from .idempotency import caller_of, check_idempotency_key, refund_request_no
from .methods import PaymentMethods, PaymentResult, trade_ref
from .policy import ACTIONS, READ_ONLY, PaymentPolicy, PolicyError, RefundBook
from .store import SharedStore

PROPOSAL_TTL = 900  # seconds a proposal waits for its confirmation


@dataclass(frozen=True)
class Proposal:
    """A refund waiting for the caller's confirmation. ``token`` goes to the caller, never the model."""

    token: str = field(repr=False)
    action: str
    args: dict[str, Any]
    #: the ledger's id of the logical request (the hash of the caller-scoped key: the key is never stored)
    request_id: str = field(repr=False)
    tenant: str | None
    trace_id: str
    out_request_no: str
    amount: str
    caller: str = "-"  # whose per-day cap the refund counts against

    def to_json(self) -> str:
        return json.dumps({k: getattr(self, k) for k in self.__dataclass_fields__ if k != "token"})

    @classmethod
    def from_json(cls, token: str, text: str) -> Proposal:
        return cls(token=token, **json.loads(text))

    def to_dict(self) -> dict[str, Any]:
        """What the model is told: a proposal exists; no token."""
        return {"method": ACTIONS[self.action], "result": "needs_confirmation", "proposal": True,
                "explanation": "Proposed, not executed: the user must confirm it before any money moves.",
                "amount": self.amount, "out_request_no": self.out_request_no,
                **{k: v for k, v in self.args.items() if k in ("out_trade_no", "trade_no", "refund_reason")}}


class PaymentToolkit:
    """Payment actions for one deployment: settings (keys, gateway), policy, audit trail."""

    def __init__(self, settings: AlipaySettings, policy: PaymentPolicy | None = None,
                 audit: AuditLog | str | os.PathLike[str] | None = None, *, max_sends: int = 2,
                 methods: PaymentMethods | None = None, ledger: Ledger | None = None) -> None:
        self.settings = settings
        self.policy = policy or PaymentPolicy()
        self.audit = AuditLog(audit) if isinstance(audit, (str, os.PathLike)) else audit
        if max_sends < 1:
            raise ConfigurationError("max_sends", "must be at least 1")
        self.max_sends = max_sends
        self.methods = methods or PaymentMethods(settings)
        #: money state in the durable ledger (ALIPAY_LEDGER_URL): claims, outcomes, totals, proposals
        self.store = SharedStore(ledger)
        self.book = RefundBook(self.store)
        #: Delegation Pay's actions (propose, status, pay under a mandate, cancel) on the same parts
        self.mandates = MandateDesk(self)

    # ------------------------------------------------------------------------------------ public
    async def arun(self, action: str, args: Mapping[str, Any], *, idempotency_key: str | None = None,
                   tenant: str | None = None, trace_id: str | None = None,
                   scope: str | None = None, several: bool = False) -> PaymentResult | Proposal:
        """Run ``action`` (a tool name, see ``policy.ACTIONS``); ``PolicyError`` / ``ConfigurationError``
        when the policy or the input refuses it (nothing sent).

        A money-moving action needs ``idempotency_key``: one per logical request, the same on every retry
        of it. ``scope`` is who owns the key (a proxy key's hash, a tenant; default: the tenant), so two
        callers choosing the same key never share an action. A retry is answered from the money ledger's
        record (``replayed``), never executed again. One key is one action (a refund or cancel of one trade,
        of one amount): the same key with other arguments is refused (``IdempotencyKeyReusedError``) —
        unless ``several``, for a door whose one logical request may act on several trades (the action loop,
        an agent run), where each (action, trade) is its own claim under the key."""
        trace_id = trace_id or uuid.uuid4().hex
        scope = scope or f"-|{tenant or '-'}"
        if action not in ACTIONS:
            raise ConfigurationError("action", f"{action!r} is not a payment action ({', '.join(sorted(ACTIONS))})")
        args = dict(args)
        try:
            self.policy.check_enabled(action)
            if action in MANDATE_ACTIONS:  # Delegation Pay: its own flow, attempts and outcomes audited there
                return await self.mandates.arun(action, args, idempotency_key=idempotency_key, tenant=tenant,
                                                trace_id=trace_id, scope=scope)
            if action in ("refund", "cancel_payment") and not several:
                await self._bind(action, args, idempotency_key, scope)
            if action == "refund":
                return await self._refund(args, idempotency_key, tenant, trace_id, scope, confirmed=False)
            if action == "cancel_payment":  # refunds a paid trade in full: money, under the same rules
                return await self._cancel(args, idempotency_key, tenant, trace_id, scope)
            result = await self._simple(action, args)
        except (PolicyError, ConfigurationError) as exc:
            self._audit("refused", action, args, tenant, trace_id, result="refused",
                        reason=str(exc), setting=getattr(exc, "setting", None))
            raise
        if action not in READ_ONLY:
            self._audit("outcome", action, args, tenant, trace_id, result=result)
        return result

    def run(self, action: str, args: Mapping[str, Any], **kwargs: Any) -> PaymentResult | Proposal:
        return run_sync(self.arun(action, args, **kwargs))

    async def aconfirm(self, token: str) -> PaymentResult:
        """Execute a proposal (on any worker sharing the store). Only the caller holds ``token``; a
        wrong, used or expired one is refused."""
        stored = await self.store.take(_proposal_key(token)) if isinstance(token, str) and token else None
        proposal = Proposal.from_json(token, stored) if stored else None
        if proposal is None:
            raise PolicyError("confirmation_token", "no pending proposal for this confirmation token (wrong, "
                                                    "used or expired)")
        self._audit("confirmation", proposal.action, proposal.args, proposal.tenant, proposal.trace_id,
                    out_request_no=proposal.out_request_no, amount=proposal.amount)
        result = await self._refund(proposal.args, None, proposal.tenant, proposal.trace_id, "", confirmed=True,
                                    bound=(proposal.request_id, proposal.caller))
        assert isinstance(result, PaymentResult)
        return result

    def confirm(self, token: str) -> PaymentResult:
        return run_sync(self.aconfirm(token))

    def payment_link(self, **kwargs: Any) -> str:
        """A signed page/WAP payment URL or form (``PaymentMethods.payment_link``); needs create_payment."""
        self.policy.check_enabled("create_payment")
        return self.methods.payment_link(**kwargs)

    # ------------------------------------------------------------------------------ the actions
    async def _simple(self, action: str, args: dict[str, Any]) -> PaymentResult:
        m = self.methods
        ref = {"out_trade_no": args.get("out_trade_no"), "trade_no": args.get("trade_no")}
        if action == "query_payment":
            return await m.query(**ref)
        if action == "query_refund":
            return await m.refund_query(out_request_no=_arg(args, "out_request_no"), **ref)
        if action == "bill_download_url":
            return await m.bill_url(bill_date=_arg(args, "bill_date"), bill_type=args.get("bill_type") or "trade")
        if action == "close_payment":
            return await m.close(**ref)
        if action == "cancel_payment":
            return await m.cancel(**ref)
        return await m.precreate(out_trade_no=_arg(args, "out_trade_no"), total_amount=args.get("total_amount"),
                                 subject=_arg(args, "subject"), notify_url=args.get("notify_url"))

    async def _refund(self, args: dict[str, Any], idempotency_key: str | None, tenant: str | None,
                      trace_id: str, scope: str, *, confirmed: bool,
                      bound: tuple[str, str] | None = None) -> PaymentResult | Proposal:
        """One logical refund: answered from the ledger when an earlier attempt under the key claimed it,
        else checked, claimed with its cap holds (committed before the send), sent and settled. ``bound``:
        a confirmed proposal's request id and caller (its key is not kept)."""
        app = self.settings.app_id
        if bound is None:
            rid, caller = request_id(scope, check_idempotency_key(idempotency_key)), caller_of(scope)
        else:
            rid, caller = bound
        amount = wire.amount(args.get("refund_amount"), "refund_amount")
        cents = wire.cents(amount)
        ref = trade_ref(args.get("out_trade_no"), args.get("trade_no"))
        trade = trade_key(ref)
        request_no = refund_request_no(app, rid, trade)
        audit = {"out_request_no": request_no, "amount": amount, "tenant": tenant, "trace_id": trace_id}
        self.policy.check_call_cap(cents)  # before any call
        ledger = self.store.ledger

        earlier = await ledger.action(rid, "refund", trade)
        if earlier is not None:
            return await self._replay(earlier, cents, args, ref, audit)
        early, total = await self._preflight(ref, request_no)
        if early is not None:
            self._audit("outcome", "refund", args, **audit, result=early)
            return early
        refundable = total - await self.book.refunded(app, trade)
        self.policy.check_refund(cents, refundable)

        if self.policy.confirm and not confirmed:
            proposal = Proposal("cf_" + secrets.token_urlsafe(24), "refund", args, rid, tenant, trace_id,
                                request_no, amount, caller)
            await self.store.put(_proposal_key(proposal.token), proposal.to_json(), PROPOSAL_TTL)
            self._audit("proposal", "refund", args, **audit, result="needs_confirmation")
            return proposal

        row, mine = await ledger.claim_action(rid, app, "refund", trade, request_no, cents,
                                              self.policy.holds(app, caller, rid, cents))
        if not mine:  # a concurrent attempt under the same key claimed it first
            return await self._replay(row, cents, args, ref, audit)
        result = await self._send_refund(args, ref, amount, request_no, audit)
        return await self._settle(row, result, args, audit)

    async def _bind(self, action: str, args: Mapping[str, Any], idempotency_key: str | None, scope: str) -> None:
        """One key, one action: the key's request is bound to this action, trade and amount (Stripe's rule);
        the same key with other arguments is refused before anything is sent."""
        key = check_idempotency_key(idempotency_key)
        ref = trade_ref(args.get("out_trade_no"), args.get("trade_no"))
        amount = wire.amount(args.get("refund_amount"), "refund_amount") if action == "refund" else ""
        material = json.dumps([action, trade_key(ref), amount])
        await self.store.ledger.open_request(request_id(scope, key), self.settings.app_id,
                                             hashlib.sha256(material.encode()).hexdigest()[:32],
                                             key_name="idempotency_key")

    async def _cancel(self, args: dict[str, Any], idempotency_key: str | None, tenant: str | None,
                      trace_id: str, scope: str) -> PaymentResult:
        """Cancel an order: closes it if unpaid, refunds it in full if paid — so, like a refund, claimed in
        the ledger with its cap holds (the trade's total when paid) before it is sent, and a retry under the
        key is answered from the record. Alipay cancels a trade at most once, so an unknown outcome is
        settled by sending the cancel again."""
        app = self.settings.app_id
        key = check_idempotency_key(idempotency_key)
        ref = trade_ref(args.get("out_trade_no"), args.get("trade_no"))
        rid = request_id(scope, key)
        ledger = self.store.ledger
        row = await ledger.action(rid, "cancel_payment", trade_key(ref))
        audit = {"tenant": tenant, "trace_id": trace_id}
        if row is not None and row.state in FINAL and row.answer:
            replayed = _replayed(row)
            self._audit("replay", "cancel_payment", args, **audit, result=replayed)
            return replayed
        if row is None:
            query = await self.methods.query(**ref)
            if query.result is not ResultClass.SUCCEEDED:
                return replace(query, method=wire.CANCEL, sent=False, explanation="Not sent: " + query.explanation)
            paid = query.node.get("trade_status") == "TRADE_SUCCESS"
            cents = wire.cents(query.node.get("total_amount")) if paid else 0
            if cents:
                self.policy.check_call_cap(cents)
            holds = self.policy.holds(app, caller_of(scope), rid, cents) if cents else []
            row, mine = await ledger.claim_action(rid, app, "cancel_payment", trade_key(ref), "", cents, holds)
            if not mine and row.state in FINAL and row.answer:  # a concurrent attempt already answered
                return _replayed(row)
        self._audit("attempt", "cancel_payment", args, **audit, amount=wire.yuan(row.amount_cents or 0))
        result = await self.methods.cancel(**ref)
        await self._record(row, result)
        self._audit("outcome", "cancel_payment", args, **audit, result=result)
        return result

    async def arecorded(self, idempotency_key: str, scope: str) -> list[tuple[dict[str, Any], PaymentResult]]:
        """What the money ledger holds for a logical request: each action's arguments (trade, amount) and
        recorded outcome, reconciled first when an earlier attempt's answer was lost (a crash between send
        and answer). The action loop answers a retry of an unfinished request with these instead of asking
        its model again."""
        record = await self.store.ledger.request(request_id(scope, check_idempotency_key(idempotency_key)))
        found = []
        for row in record.actions if record else ():
            if row.action in MANDATE_ACTIONS:  # a payment under a Delegation Pay mandate
                found.append(await self.mandates.arecorded(row))
                continue
            ref = dict([row.trade.split("=", 1)])
            if row.action == "cancel_payment":  # answered from its record, or cancelled again (at most once)
                found.append(({**ref, "action": "cancel_payment"},
                              await self._cancel(dict(ref), idempotency_key, None, "", scope)))
                continue
            args = {**ref, "refund_amount": wire.yuan(row.amount_cents or 0)}
            audit = {"out_request_no": row.out_request_no, "amount": args["refund_amount"], "tenant": None,
                     "trace_id": None}
            found.append((args, await self._replay(row, row.amount_cents or 0, args, ref, audit)))
        return found

    async def _settle(self, row: ActionRow, result: PaymentResult, args: dict[str, Any],
                      audit: dict[str, Any]) -> PaymentResult:
        """Record a refund's outcome before answering (``_record``) and the trade's refunded total."""
        await self._record(row, result)
        if result.result is ResultClass.SUCCEEDED and result.node.get("refund_fee"):
            await self.book.record_refunded(self.settings.app_id, row.trade, wire.cents(result.node["refund_fee"]))
        self._audit("outcome", "refund", args, **audit, result=result)
        return result

    async def _record(self, row: ActionRow, result: PaymentResult) -> None:
        """An attempt's outcome in the ledger: holds kept for money that moved (or may have), given back when
        it certainly did not; an attempt that certainly did nothing frees the claim for a retry."""
        ledger = self.store.ledger
        if result.result is ResultClass.SUCCEEDED:
            await ledger.settle_action(row, SUCCEEDED, result.result.value, result.to_record())
        elif result.result is ResultClass.FAILED and result.outcome_known:
            await ledger.settle_action(row, FAILED, result.result.value, result.to_record(), keep_cents=0)
        elif not result.sent or (result.outcome_known and result.result is ResultClass.RETRY_SAME_ID):
            await ledger.release_action(row)  # nothing happened: a retry under the key sends the same number
        else:
            await ledger.settle_action(row, UNKNOWN, result.result.value, result.to_record())

    async def _replay(self, row: ActionRow, cents: int, args: dict[str, Any], ref: dict[str, str],
                      audit: dict[str, Any]) -> PaymentResult:
        """A later attempt of a claimed refund: the recorded outcome, or — when the earlier attempt's answer
        was lost — the refund query under its number, then (only if Alipay has no such refund) the same
        number sent again, which Alipay executes at most once."""
        if row.amount_cents != cents:
            raise IdempotencyKeyReusedError(
                "idempotency_key", f"a refund of {wire.yuan(row.amount_cents or 0)} on this trade; a second, "
                                   "different refund of the same trade needs a new key")
        audit = {**audit, "out_request_no": row.out_request_no}
        if row.state in FINAL and row.answer:
            replayed = _replayed(row)
            self._audit("replay", "refund", args, **audit, result=replayed)
            return replayed
        check = await self.methods.refund_query(out_request_no=row.out_request_no, **ref)
        if check.node.get("refund_status") == "REFUND_SUCCESS":
            done = replace(_reconciled(check, row.out_request_no, "An earlier attempt of this request refunded "
                                       "it (its answer was lost); nothing was sent again."), replayed=True)
            await self.store.ledger.settle_action(row, SUCCEEDED, done.result.value, done.to_record())
            if done.node.get("refund_fee"):
                await self.book.record_refunded(self.settings.app_id, row.trade, wire.cents(done.node["refund_fee"]))
            self._audit("outcome", "refund", args, **audit, result=done)
            return done
        if check.result is not ResultClass.NEEDS_CONFIRMATION:  # Alipay cannot tell now: nothing sent
            return replace(check, method=wire.REFUND, out_request_no=row.out_request_no, sent=False,
                           outcome_known=False, explanation="Not sent: an earlier attempt of this request may "
                           "have refunded it and the refund query cannot tell now; retry with the same key. "
                           + check.explanation)
        result = await self._send_refund(args, ref, wire.yuan(cents), row.out_request_no, audit)
        return await self._settle(row, result, args, audit)

    async def _preflight(self, ref: dict[str, str], request_no: str) -> tuple[PaymentResult | None, int]:
        """``(the answer, 0)`` when the refund must not (or need not) be sent, else ``(None, the trade's
        total in cents)``.

        First the refund query under the derived number (an earlier attempt may have committed: report
        it, send nothing), then the trade query (it must exist and be paid)."""
        done = await self.methods.refund_query(out_request_no=request_no, **ref)
        if done.node.get("refund_status") == "REFUND_SUCCESS":
            return _reconciled(done, request_no, "This refund already succeeded earlier; nothing was sent again."), 0
        if done.result is not ResultClass.NEEDS_CONFIRMATION:  # no such trade, or Alipay cannot tell now
            return replace(done, method=wire.REFUND, out_request_no=request_no, sent=False,
                           explanation="Not sent: " + done.explanation), 0
        query = await self.methods.query(**ref)
        if query.result is not ResultClass.SUCCEEDED:
            return replace(query, method=wire.REFUND, out_request_no=request_no, sent=False,
                           explanation="Not sent: " + query.explanation), 0
        status = query.node.get("trade_status")
        if status != "TRADE_SUCCESS":
            node = {"trade_no": query.trade_no, "out_trade_no": query.node.get("out_trade_no"), "trade_status": status}
            return PaymentResult(wire.REFUND, ResultClass.FAILED, f"Not sent: the trade is {status}; only a paid "
                                 "(TRADE_SUCCESS) trade can be refunded.", node, request_no, sent=False), 0
        return None, wire.cents(query.node.get("total_amount"))

    async def _send_refund(self, args: dict[str, Any], ref: dict[str, str], amount: str, request_no: str,
                           audit: dict[str, Any]) -> PaymentResult:
        """Send with the same number at most ``max_sends`` times, reconciling after each unknown outcome."""
        result: PaymentResult | None = None
        for attempt in range(1, self.max_sends + 1):
            self._audit("attempt", "refund", args, **audit, attempt=attempt)
            result = await self.methods.refund(out_request_no=request_no, refund_amount=amount,
                                               refund_reason=args.get("refund_reason"), **ref)
            if result.result in (ResultClass.SUCCEEDED, ResultClass.FAILED):
                return result
            check = await self.methods.refund_query(out_request_no=request_no, **ref)
            if check.node.get("refund_status") == "REFUND_SUCCESS":
                explanation = ("Alipay answered without a fund change; the refund query confirms this refund "
                               "succeeded (once).") if result.result is ResultClass.NEEDS_CONFIRMATION else \
                    "The answer was lost, but the refund query confirms the refund happened (once)."
                merged = _reconciled(check, request_no, explanation)
                if result.result is ResultClass.NEEDS_CONFIRMATION:
                    merged = replace(merged, node={**merged.node, "fund_change": "N"})
                return merged
            if check.result is not ResultClass.NEEDS_CONFIRMATION:
                return result  # the query cannot tell either: stop, the outcome stays unknown
            # a definite "no refund under this number": sending again with the same number is safe
        assert result is not None
        return replace(result, outcome_known=True, explanation=result.explanation
                       + " The refund query shows it did not happen; retry later with the same idempotency key.")

    # ------------------------------------------------------------------------------------ audit
    def _audit(self, event: str, action: str, args: Mapping[str, Any], tenant: str | None = None,
               trace_id: str | None = None, *, result: PaymentResult | str | None = None, **fields: Any) -> None:
        if self.audit is None:
            return
        if isinstance(result, PaymentResult):
            fields.update(result=result.result.value, sub_code=result.sub_code, trade_no=result.trade_no,
                          outcome_known=result.outcome_known, reconciled=result.reconciled or None)
            fields.setdefault("amount", result.node.get("refund_amount") or result.node.get("total_amount"))
        elif result is not None:
            fields["result"] = result
        self.audit.write(event, app=self.settings.app_id, tenant=tenant, action=action, method=ACTIONS[action],
                         args=args, out_trade_no=args.get("out_trade_no"), trace_id=trace_id, **fields)


def _replayed(row: ActionRow) -> PaymentResult:
    """A settled action's recorded outcome, given again: nothing moved in this call."""
    return replace(PaymentResult.from_record(row.answer or {}), replayed=True)


def trade_key(ref: Mapping[str, str]) -> str:
    """How the ledger names a trade: the selector and its value (``out_trade_no=T1``), enough to query it."""
    (name, value), = ref.items()
    return f"{name}={value}"


def _proposal_key(token: str) -> str:
    """Stored under the token's hash: a Redis dump does not hand out confirmations."""
    return "proposal:" + hashlib.sha256(token.encode()).hexdigest()


def _reconciled(query: PaymentResult, request_no: str, explanation: str) -> PaymentResult:
    return PaymentResult(wire.REFUND, ResultClass.SUCCEEDED, explanation, dict(query.node), request_no,
                         reconciled=True)


def _arg(args: Mapping[str, Any], name: str) -> str:
    value = args.get(name)
    if value is None or not str(value).strip():
        raise ConfigurationError(name, "is required")
    return str(value)
