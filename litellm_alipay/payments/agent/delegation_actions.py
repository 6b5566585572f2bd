"""The mandate tools' flow: propose, status, pay under the mandate, cancel — at most once, audited.

* ``propose_mandate`` signs the apply string for the user's Alipay app and records the mandate
  (``SIGNING``); it never executes anything. Its ids (``external_agreement_no``, ``external_delegation_id``
  — the latter is the ``mandate_id`` the model refers to afterwards) derive from the caller-scoped
  idempotency key, so a retry proposes the same mandate; the same key with another mandate is refused.
* ``pay_under_mandate`` is a money-moving action like a refund: the mandate is checked here first (our
  record, refreshed from query when stale or unknown; the operator's constraints), then claimed in the
  ledger with its holds (our spend and count under the mandate, the day's count) before the first byte
  leaves; ``out_trade_no`` derives from (app, scoped key, mandate). Prepay, then pay; an unknown outcome
  (or ``TRADE_HAS_SUCCESS``) is reconciled by the order query and a definite "not paid" retried with the
  same ids. The outcome is recorded before the answer; a later attempt is answered from it
  (``replayed``) or, when the answer was lost, from the order query — never paid twice.
* ``mandate_status`` refreshes and reports; ``cancel_mandate`` cancels at Alipay, then here.

A mandate belongs to the scope that proposed it: another caller is told there is no such mandate.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ...errors import ConfigurationError, PolicyError
from ...ledger import FAILED, FINAL, SUCCEEDED, UNKNOWN, ActionRow, IdempotencyKeyReusedError, request_id
from .. import wire
from ..classify import ResultClass
from ..idempotency import check_idempotency_key
from ..methods import PaymentResult
from . import delegation_wire as dw
from .delegation import DelegationMethods
from .mandate import Mandate, MandateBook, MandatePolicy, beijing_now, check_payable, holds, owner_of, stale

MANDATE_ACTIONS = dw.MANDATE_ACTIONS
PAY_ACTION = "pay_under_mandate"
#: Alipay's refusals that say the mandate is not what our record says
_MANDATE_REFUSALS = ("ACQ.AGREEMENT", "ACQ.BEYOND_PAY_RESTRICTION")


@dataclass(frozen=True)
class MandateResult(PaymentResult):
    """A mandate tool's outcome: the method's result plus what the caller needs (``extra``: the mandate,
    the apply string for the app, the order number)."""

    extra: dict[str, Any] = field(default_factory=dict, repr=False)  # order_str carries the app's sign

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(self.extra)
        return out

    def to_record(self) -> dict[str, Any]:
        return {**super().to_record(), "extra": self.extra}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> MandateResult:
        base = PaymentResult.from_record(record)
        return cls(base.method, base.result, base.explanation, base.node, base.out_request_no, base.sent,
                   base.outcome_known, base.reconciled, extra=dict(record.get("extra") or {}))


def _result(base: PaymentResult, **extra: Any) -> MandateResult:
    return MandateResult(base.method, base.result, base.explanation, base.node, base.out_request_no, base.sent,
                         base.outcome_known, base.reconciled, base.replayed, extra={k: v for k, v in extra.items()
                                                                                    if v is not None})


def derived_id(prefix: str, *parts: str, length: int = 30) -> str:
    """An id from (app, scoped key, …): letters and digits, never chosen by a model."""
    return prefix + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]


class MandateDesk:
    """The mandate actions of one ``PaymentToolkit`` (its settings, methods, policy, ledger and audit)."""

    def __init__(self, toolkit: Any) -> None:
        self.kit = toolkit
        self.calls = DelegationMethods(toolkit.methods)
        self.clock = time.time  # tests may move our own clock too

    @property
    def book(self) -> MandateBook:
        return MandateBook(self.kit.store.ledger)

    @property
    def policy(self) -> MandatePolicy:
        return getattr(self.kit.policy, "mandate", None) or MandatePolicy()

    # ----------------------------------------------------------------------------------- the door
    async def arun(self, action: str, args: Mapping[str, Any], *, idempotency_key: str | None, tenant: str | None,
                   trace_id: str | None, scope: str) -> MandateResult:
        """One tool call (the toolkit's dispatch): the model's business arguments only."""
        trace_id = trace_id or uuid.uuid4().hex
        ctx = {"scope": scope, "tenant": tenant, "trace_id": trace_id}
        if action == "propose_mandate":
            return await self.propose(idempotency_key=idempotency_key, description=_arg(args, "delegation_desc"),
                                      max_total_amount=args.get("max_total_amount"),
                                      valid_days=_int(args, "valid_days"), times_limit=args.get("times_limit"),
                                      tag=args.get("delegation_tag"), **ctx)
        mandate_id = _arg(args, "mandate_id")
        if action == "mandate_status":
            return await self.status(mandate_id, **ctx)
        if action == "cancel_mandate":
            return await self.cancel(mandate_id, **ctx)
        if action == PAY_ACTION:
            return await self.pay(mandate_id, idempotency_key=idempotency_key, total_amount=args.get("total_amount"),
                                  subject=_arg(args, "subject"), goods_id=args.get("goods_id"),
                                  seller_id=args.get("seller_id"), **ctx)
        raise ConfigurationError("action", f"{action!r} is not a mandate action")

    # -------------------------------------------------------------------------------- propose
    async def propose(self, *, scope: str, idempotency_key: str | None, description: str, max_total_amount: Any,
                      valid_days: int, times_limit: Any = None, tag: str | None = None,
                      constraints: MandatePolicy | Mapping[str, Any] | None = None,
                      conversation: list[Mapping[str, str]] | None = None, tenant: str | None = None,
                      trace_id: str | None = None) -> MandateResult:
        """Sign the apply string and record the mandate (``SIGNING``). ``constraints``: the operator's, for
        this mandate only (a model never sets them)."""
        key = check_idempotency_key(idempotency_key)
        app = self.kit.settings.app_id
        rid = request_id(scope, key)
        today = beijing_now(self.clock()).date()
        start, end = dw.validity(valid_days, today)
        mandate_id = derived_id("MD", "delegation", app, rid)
        agreement = derived_id("AG", "agreement", app, rid)
        per_mandate = constraints if isinstance(constraints, MandatePolicy) else \
            MandatePolicy.from_mapping(dict(constraints or {}))
        params = dw.delegation_params(external_delegation_id=mandate_id, delegation_desc=description,
                                      max_total_amount=max_total_amount, validity_start=start, validity_end=end,
                                      times_limit=dw.times(times_limit), delegation_tag=tag)
        cents = wire.cents(params["max_total_amount"])
        record = Mandate(mandate_id, app, owner_of(scope), rid, agreement, None, None, dw.SIGNING, cents,
                         dw.times(times_limit), cents, dw.times(times_limit),
                         dw.stamp(dw.window_start(start)), dw.stamp(dw.window_end(end)), params["delegation_desc"],
                         params.get("delegation_tag"), per_mandate.constraints(), None)
        held, created = await self.book.create(record)
        if not created and (held.owner != record.owner or (held.max_total_cents, held.times_limit,
                                                           held.description) != (cents, record.times_limit,
                                                                                 record.description)):
            raise IdempotencyKeyReusedError("idempotency_key", "another mandate was proposed under this key")
        if not created:  # the same proposal again: the same ids, its dates as first proposed
            params.update(validity_start_time=held.validity_start[:10], validity_end_time=held.validity_end[:10])
        signed = self.calls.apply(agent_id=self.policy.agent_id or app, external_agreement_no=agreement,
                                  mandate=params, conversation=conversation)
        base = PaymentResult(dw.APPLY, ResultClass.NEEDS_CONFIRMATION,
                             "Proposed, not executed: hand order_str to the Alipay app; the user approves the mandate "
                             "there. Then pay_under_mandate with this mandate_id.", {}, sent=False)
        result = _result(base, order_str=signed.order_str, **held.public())
        self._audit("proposal", "propose_mandate", held, tenant, trace_id, result=result.result.value,
                    amount=wire.yuan(cents), replayed=None if created else True)
        return result

    # --------------------------------------------------------------------------------- status
    async def status(self, mandate_id: str, *, scope: str, tenant: str | None = None,
                     trace_id: str | None = None) -> MandateResult:
        mandate = await self._mine(mandate_id, scope)
        mandate, answer = await self._refresh(mandate, force=True)
        base = answer or PaymentResult(dw.QUERY, ResultClass.SUCCEEDED, "From our record (a terminal state).", {},
                                       sent=False)
        if answer is not None and answer.result is not ResultClass.SUCCEEDED and mandate.status == dw.SIGNING:
            base = replace(answer, explanation="Not approved yet (or not known to Alipay): " + answer.explanation)
        return _result(replace(base, node={}), **mandate.public())

    # --------------------------------------------------------------------------------- cancel
    async def cancel(self, mandate_id: str, *, scope: str, tenant: str | None = None,
                     trace_id: str | None = None) -> MandateResult:
        mandate = await self._mine(mandate_id, scope)
        if mandate.status in (dw.SIGNING,) or not (mandate.agreement_no and mandate.delegation_id):
            mandate, _ = await self._refresh(mandate, force=True)
        if mandate.status in dw.TERMINAL:
            base = PaymentResult(dw.CANCEL, ResultClass.SUCCEEDED, f"Nothing to cancel: the mandate is "
                                 f"{mandate.status}.", {}, sent=False)
            return _result(base, **mandate.public())
        if not (mandate.agreement_no and mandate.delegation_id):
            raise PolicyError("mandate.status", "the user has not approved this mandate yet: nothing to cancel at "
                                                "Alipay (an unapproved apply string simply expires)")
        self._audit("attempt", "cancel_mandate", mandate, tenant, trace_id)
        answer = await self.calls.cancel(agreement_no=mandate.agreement_no, delegation_id=mandate.delegation_id)
        if answer.result is ResultClass.SUCCEEDED:
            mandate = await self.book.set_status(mandate.mandate_id, dw.CANCELLED) or mandate
        self._audit("outcome", "cancel_mandate", mandate, tenant, trace_id, result=answer.result.value,
                    sub_code=answer.sub_code)
        return _result(answer, **mandate.public())

    # ------------------------------------------------------------------------------------ pay
    async def pay(self, mandate_id: str, *, scope: str, idempotency_key: str | None, total_amount: Any,
                  subject: str, goods_id: str | None = None, seller_id: str | None = None,
                  tenant: str | None = None, trace_id: str | None = None) -> MandateResult:
        """One payment under the mandate, at most once per (scoped key, mandate)."""
        key = check_idempotency_key(idempotency_key)
        amount = wire.amount(total_amount, "total_amount")
        cents = wire.cents(amount)
        title = dw.subject(subject)
        mandate = await self._mine(mandate_id, scope)
        app = self.kit.settings.app_id
        rid = request_id(scope, key)
        order = derived_id("AP", "agent-pay", app, rid, mandate.mandate_id)
        ctx = _Pay(mandate, order, amount, cents, title, goods_id, seller_id, tenant, trace_id)
        ledger = self.kit.store.ledger

        earlier = await ledger.action(rid, PAY_ACTION, mandate.mandate_id)
        if earlier is not None:
            return await self._replay(earlier, ctx)
        ctx.mandate = await self._checked(ctx)
        row, mine = await ledger.claim_action(rid, app, PAY_ACTION, mandate.mandate_id, order, cents,
                                              holds(ctx.mandate, cents, self._policy(ctx.mandate),
                                                    beijing_now(self.clock()).strftime("%Y-%m-%d")))
        if not mine:
            return await self._replay(row, ctx)
        return await self._settle(row, await self._send(ctx), ctx)

    async def _checked(self, ctx: _Pay) -> Mandate:
        """The mandate refreshed when stale or unknown, then checked (``PolicyError``: nothing sent)."""
        mandate, answer = await self._refresh(ctx.mandate)
        if answer is not None and answer.result is not ResultClass.SUCCEEDED and mandate.status != dw.SIGNING \
                and stale(mandate, self.policy, self.clock()):  # SIGNING: refused below as not approved
            raise PolicyError("mandate.status", "the mandate's state cannot be confirmed with Alipay now "
                                                f"({answer.sub_code or answer.explanation}); nothing was sent")
        check_payable(mandate, ctx.cents, self._policy(mandate), now=beijing_now(self.clock()),
                      goods_id=ctx.goods_id, seller_id=ctx.seller_id)  # a refusal is audited by the toolkit
        return mandate

    def _policy(self, mandate: Mandate) -> MandatePolicy:
        return self.policy.strictest(mandate.policy())

    async def _send(self, ctx: _Pay) -> MandateResult:
        """Prepay then pay with the same ids, at most ``max_sends`` times, reconciling every unknown outcome
        by the order query before sending again."""
        m = ctx.mandate
        last: PaymentResult | None = None
        for attempt in range(1, self.kit.max_sends + 1):
            self._audit("attempt", PAY_ACTION, m, ctx.tenant, ctx.trace_id, attempt=attempt, amount=ctx.amount,
                        out_trade_no=ctx.order)
            pre = await self.calls.prepay(out_trade_no=ctx.order, total_amount=ctx.amount, subject=ctx.subject,
                                          notify_url=self.policy.notify_url, seller_id=ctx.seller_id,
                                          goods_id=ctx.goods_id)
            if pre.result is ResultClass.SUCCEEDED:
                last = await self.calls.pay(prepay_id=str(pre.node["prepay_id"]), agreement_no=str(m.agreement_no),
                                            delegation_id=str(m.delegation_id), notify_url=self.policy.notify_url)
                if last.result in (ResultClass.SUCCEEDED, ResultClass.FAILED):
                    return _result(replace(last, out_request_no=ctx.order), out_trade_no=ctx.order,
                                   total_amount=ctx.amount)
            elif pre.result is ResultClass.FAILED or (pre.result is ResultClass.RETRY_SAME_ID and pre.outcome_known):
                return _result(replace(pre, method=dw.PAY, out_request_no=ctx.order, explanation="Not paid: the "
                               "order could not be made (" + pre.explanation + ")"), out_trade_no=ctx.order)
            else:
                last = pre  # unknown, or TRADE_HAS_SUCCESS: the order query decides
            known, undecided = await self._order_paid(ctx)
            if known is not None:
                return known
            if undecided:
                break
        assert last is not None
        return _result(replace(last, method=dw.PAY, out_request_no=ctx.order, outcome_known=not undecided,
                               explanation=last.explanation + (" The order query cannot tell now; retry with the "
                                                               "same idempotency key." if undecided else
                                                               " Not paid (the order query shows it); retry later "
                                                               "with the same idempotency key.")),
                       out_trade_no=ctx.order)

    async def _order_paid(self, ctx: _Pay) -> tuple[MandateResult | None, bool]:
        """The order query's verdict: ``(a reconciled success, False)``, ``(None, False)`` when the order is
        certainly unpaid, ``(None, True)`` when the query cannot tell."""
        check = await self.calls.order_query(ctx.order)
        status = check.node.get("trade_status")
        if status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
            done = PaymentResult(dw.PAY, ResultClass.SUCCEEDED, "Paid once: the order query confirms the payment "
                                 "(its first answer was lost, or it was paid before); nothing was paid again.",
                                 {"trade_no": check.node.get("trade_no"), "out_trade_no": ctx.order,
                                  "total_amount": check.node.get("total_amount"), "trade_status": status},
                                 ctx.order, reconciled=True)
            return _result(done, out_trade_no=ctx.order), False
        definite = check.result is ResultClass.SUCCEEDED or check.sub_code == "ACQ.TRADE_NOT_EXIST"
        return None, not definite

    async def _settle(self, row: ActionRow, result: MandateResult, ctx: _Pay) -> MandateResult:
        """The outcome recorded before the answer: holds kept for money that moved (or may have), given back
        when it certainly did not; what remains of the mandate goes down at once after a payment."""
        ledger = self.kit.store.ledger
        if result.result is ResultClass.SUCCEEDED:
            mandate = await self.book.paid(ctx.mandate.mandate_id, ctx.cents)
            result = replace(result, extra={**result.extra, **_money(mandate)})
            await ledger.settle_action(row, SUCCEEDED, result.result.value, result.to_record())
        elif result.result is ResultClass.FAILED and result.outcome_known:
            await ledger.settle_action(row, FAILED, result.result.value, result.to_record(), keep_cents=0)
            if str(result.sub_code or "").startswith(_MANDATE_REFUSALS):  # our record was behind Alipay's
                await self.book.forget_sync(ctx.mandate.mandate_id)
        elif result.outcome_known and not result.sent:
            await ledger.release_action(row)
        else:
            await ledger.settle_action(row, UNKNOWN, result.result.value, result.to_record())
        self._audit("outcome", PAY_ACTION, ctx.mandate, ctx.tenant, ctx.trace_id, result=result.result.value,
                    sub_code=result.sub_code, trade_no=result.trade_no, amount=ctx.amount, out_trade_no=ctx.order,
                    outcome_known=result.outcome_known, reconciled=result.reconciled or None,
                    replayed=result.replayed or None)
        return result

    async def _replay(self, row: ActionRow, ctx: _Pay) -> MandateResult:
        """A later attempt of a claimed payment: its recorded outcome, or the order query's answer, or
        (the order certainly unpaid) the same ids sent again."""
        if row.amount_cents != ctx.cents:
            raise IdempotencyKeyReusedError("idempotency_key", f"a payment of {wire.yuan(row.amount_cents or 0)} "
                                                               "under this mandate; another payment needs a new key")
        if row.state in FINAL and row.answer:
            replayed = replace(MandateResult.from_record(row.answer), replayed=True)
            self._audit("replay", PAY_ACTION, ctx.mandate, ctx.tenant, ctx.trace_id, result=replayed.result.value,
                        out_trade_no=ctx.order, amount=ctx.amount)
            return replayed
        done, undecided = await self._order_paid(ctx)
        if done is not None:
            return await self._settle(row, replace(done, replayed=True), ctx)
        if undecided:
            base = PaymentResult(dw.PAY, ResultClass.RETRY_SAME_ID, "Not sent: an earlier attempt of this payment "
                                 "may have paid and the order query cannot tell now; retry with the same key.", {},
                                 ctx.order, sent=False, outcome_known=False)
            return _result(base, out_trade_no=ctx.order)
        ctx.mandate = await self._checked(ctx)
        return await self._settle(row, await self._send(ctx), ctx)

    async def arecorded(self, row: ActionRow) -> tuple[dict[str, Any], MandateResult]:
        """A recorded payment of a logical request (``PaymentToolkit.arecorded``): its outcome, reconciled by
        the order query when the attempt never recorded one — never sent again (no model is asked)."""
        cents = row.amount_cents or 0
        args = {"action": PAY_ACTION, "mandate_id": row.trade, "out_trade_no": row.out_request_no,
                "total_amount": wire.yuan(cents)}
        if row.state in FINAL and row.answer:
            return args, replace(MandateResult.from_record(row.answer), replayed=True)
        mandate = await self.book.get(row.trade)
        assert mandate is not None  # a claimed payment's mandate is never deleted
        ctx = _Pay(mandate, row.out_request_no, wire.yuan(cents), cents, "", None, None, None, None)
        done, undecided = await self._order_paid(ctx)
        if done is not None:
            return args, await self._settle(row, replace(done, replayed=True), ctx)
        base = PaymentResult(dw.PAY, ResultClass.RETRY_SAME_ID, "The order query cannot tell now whether the earlier "
                             "attempt paid; ask again with the same key." if undecided else "Not paid: the earlier "
                             "attempt did not pay (the order query shows it).", {}, row.out_request_no, sent=False,
                             outcome_known=not undecided)
        return args, _result(base, out_trade_no=row.out_request_no)

    # ----------------------------------------------------------------------------------- helpers
    async def _mine(self, mandate_id: str, scope: str) -> Mandate:
        found = await self.book.get(str(mandate_id), owner_of(scope))
        if found is None:
            raise PolicyError("mandate_id", "no such mandate for this caller (propose_mandate returns its id)")
        return found

    async def _refresh(self, mandate: Mandate, *, force: bool = False) -> tuple[Mandate, PaymentResult | None]:
        """The record synced from query when stale or unknown (``force``: unless terminal)."""
        if mandate.status in dw.TERMINAL or not (force or stale(mandate, self.policy, self.clock())):
            return mandate, None
        answer = await self.calls.query(agreement_no=mandate.agreement_no,
                                        external_agreement_no=mandate.external_agreement_no,
                                        delegation_id=mandate.delegation_id,
                                        external_delegation_id=mandate.mandate_id)
        if answer.result is ResultClass.SUCCEEDED:
            return await self.book.sync(mandate.mandate_id, answer.node), answer
        if answer.sub_code == "USER_AGREEMENT_NOT_EXIST" and mandate.agreement_no:
            return await self.book.set_status(mandate.mandate_id, dw.TERMINATE) or mandate, answer
        return mandate, answer

    def _audit(self, event: str, action: str, mandate: Mandate, tenant: str | None, trace_id: str | None,
               **fields: Any) -> None:
        audit = self.kit.audit
        if audit is None:
            return
        audit.write(event, app=self.kit.settings.app_id, tenant=tenant, action=action,
                    method=MANDATE_ACTIONS[action], mandate_id=mandate.mandate_id, trace_id=trace_id,
                    **{k: v for k, v in fields.items() if v is not None})


@dataclass
class _Pay:
    mandate: Mandate
    order: str
    amount: str
    cents: int
    subject: str
    goods_id: str | None
    seller_id: str | None
    tenant: str | None
    trace_id: str | None


def _money(m: Mandate) -> dict[str, Any]:
    out = {"mandate_id": m.mandate_id, "mandate_status": m.status, "remaining_amount": wire.yuan(m.remaining_cents)}
    if m.remaining_times is not None:
        out["remaining_times"] = str(m.remaining_times)
    return out


def _arg(args: Mapping[str, Any], name: str) -> str:
    value = args.get(name)
    if value is None or not str(value).strip():
        raise ConfigurationError(name, "is required")
    return str(value).strip()


def _int(args: Mapping[str, Any], name: str) -> int:
    try:
        return int(str(args.get(name)).strip())
    except ValueError:
        raise ConfigurationError(name, f"must be a whole number, got {args.get(name)!r}") from None


__all__ = ["MANDATE_ACTIONS", "MandateDesk", "MandateResult", "derived_id"]
