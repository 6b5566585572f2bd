"""The A2M merchant: orders, bills, proofs, verify, the mandatory checks, one service per proof, confirm.

The flow (ALIPAY_AGENT_PAYMENTS.md A2, A5), with the state kept in the durable ledger
(``alipay_a2m_orders``, one row per order, shared by every worker and proxy instance):

* **bill**: an order is written (``open``) *before* its signed ``Payment-Needed`` leaves;
* **admit** a ``Payment-Proof``: a trade already bound to an order is answered from the row (a served
  or confirmed order is never served again; a served one is confirmed now); otherwise
  ``alipay.aipay.agent.payment.verify`` (our signer, transport and response verification), then every
  check — ``active`` exactly true, the trade verify names is the proof's, the order exists, the amount
  (as decimals), the resource (the order's and the one requested), the trade not used for another
  order, the order not expired — then the **claim**: one conditional UPDATE moves the order to
  ``serving`` for this request only (a lease: a claim a crashed worker left is taken again after
  ``serve_lease_seconds``);
* **fulfil** after a successful answer: ``served`` is written first, then
  ``alipay.aipay.agent.fulfillment.confirm`` (``confirm_attempts`` tries); ``confirmed`` only when it
  succeeded. A served order whose confirm failed is confirmed on the next request with the same proof;
* **abandon** when the service failed: the order goes back to ``paid`` — the agent may retry with the
  same proof (verified again), and nothing is confirmed.

Every refusal is ``PaymentRequiredError`` (HTTP 402, the contract's only refusal): with a fresh bill
where a new payment is what the agent needs, without one where it should retry with the same proof.
Every attempt and outcome is one audit line; no proof, session or signature is ever in one.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ...errors import ConfigurationError, PaymentRequiredError, ProtocolError
from ...ledger import Ledger, ledger_for
from ...ledger.engine import Tx
from ...settings import AlipaySettings
from .. import wire
from ..audit import AuditLog
from ..methods import PaymentMethods, PaymentResult
from . import headers

logger = logging.getLogger("litellm_alipay.a2m")

VERIFY = "alipay.aipay.agent.payment.verify"
CONFIRM = "alipay.aipay.agent.fulfillment.confirm"

#: order states: open (billed) → serving (claimed by one request) → served (answered; confirm pending)
#: → confirmed; serving → paid when the service failed (the same proof may be retried)
OPEN, PAID, SERVING, SERVED, CONFIRMED = "open", "paid", "serving", "served", "confirmed"

_COLUMNS = "out_trade_no, app_id, resource_id, amount_cents, goods_name, pay_before, state, trade_no, claim, claimed"


@dataclass(frozen=True)
class A2MSettings:
    """What one merchant sells and how: every tunable of A2M, validated once (``from_mapping``)."""

    price: str
    goods_name: str
    service_id: str
    seller_id: str
    seller_name: str
    #: the payment window written into ``pay_before``
    pay_window_seconds: float = 1800.0
    #: how long after ``pay_before`` a proof of the order is still accepted (a payment made at the
    #: deadline reaches the merchant a little later)
    proof_grace_seconds: float = 300.0
    #: a claim older than this was left by a crashed worker: the same proof may be served again
    serve_lease_seconds: float = 600.0
    verify_timeout: float = 10.0
    confirm_timeout: float = 10.0
    confirm_attempts: int = 2
    audit_log: str | None = None

    @classmethod
    def from_mapping(cls, given: Mapping[str, Any]) -> A2MSettings:
        """From a config dict (``general_settings.alipay_a2m``); names the setting on a bad value."""
        def text(name: str, default: str | None = None) -> str:
            value = given.get(name, default)
            if value is None or not str(value).strip():
                raise ConfigurationError(f"alipay_a2m.{name}", "is required")
            return str(value).strip()

        def number(name: str, default: float, minimum: float) -> float:
            value = given.get(name, default)
            try:
                out = float(value)
            except (TypeError, ValueError):
                raise ConfigurationError(f"alipay_a2m.{name}", f"must be a number, got {value!r}") from None
            if out < minimum:
                raise ConfigurationError(f"alipay_a2m.{name}", f"must be at least {minimum}")
            return out

        try:
            price = wire.amount(given.get("price"), "alipay_a2m.price")
        except ConfigurationError:
            raise ConfigurationError("alipay_a2m.price", "must be the price per call in yuan, 0.01 or more, "
                                                         "at most 2 decimals (e.g. \"0.01\")") from None
        seller_id = text("seller_id")
        if not (seller_id.isdigit() and seller_id.startswith("2088")):
            raise ConfigurationError("alipay_a2m.seller_id", "must be the merchant's 2088… PID (b.alipay.com)")
        return cls(
            price=price, goods_name=text("goods_name"), service_id=text("service_id"), seller_id=seller_id,
            seller_name=text("seller_name", "merchant"),
            pay_window_seconds=number("pay_window_seconds", 1800.0, 60.0),
            proof_grace_seconds=number("proof_grace_seconds", 300.0, 0.0),
            serve_lease_seconds=number("serve_lease_seconds", 600.0, 1.0),
            verify_timeout=number("verify_timeout", 10.0, 0.1),
            confirm_timeout=number("confirm_timeout", 10.0, 0.1),
            confirm_attempts=int(number("confirm_attempts", 2, 1)),
            audit_log=str(given["audit_log"]) if given.get("audit_log") else None,
        )


@dataclass(frozen=True)
class Order:
    out_trade_no: str
    app_id: str
    resource_id: str
    amount_cents: int
    goods_name: str
    pay_before: float
    state: str
    trade_no: str | None
    claim: str | None = field(default=None, repr=False)
    claimed: float | None = None


def _order(row: Any) -> Order:
    return Order(row[0], row[1], row[2], int(row[3]), row[4], float(row[5]), row[6], row[7], row[8],
                 float(row[9]) if row[9] is not None else None)


@dataclass(frozen=True)
class Admission:
    """A verified, claimed proof: this request (and only it) may serve ``resource_id`` once."""

    out_trade_no: str
    trade_no: str
    resource_id: str
    amount: str
    claim: str = field(repr=False)

    @property
    def validation(self) -> str:
        """The ``Payment-Validation`` value of the 200."""
        return headers.validation(self.trade_no, self.out_trade_no, self.resource_id)


def new_out_trade_no() -> str:
    """``A2M<ms><random>``: unique across instances without coordination (≤ 64 characters)."""
    return f"A2M{int(time.time() * 1000)}{secrets.token_hex(6)}"


class A2MMerchant:
    """One merchant app's A2M flow over the durable ledger."""

    #: every how many bills unpaid orders past their deadline are deleted (a 402 costs one row)
    SWEEP_EVERY = 200

    def __init__(self, settings: AlipaySettings, a2m: A2MSettings, *, ledger: Ledger | None = None,
                 methods: PaymentMethods | None = None, prices: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.a2m = a2m
        #: a resource's own price (yuan per call); others cost ``a2m.price``
        self.prices = {resource: wire.amount(price, f"prices[{resource!r}]")
                       for resource, price in (prices or {}).items()}
        self._ledger = ledger
        self.methods = methods or PaymentMethods(settings)
        self.audit = AuditLog(a2m.audit_log) if a2m.audit_log else None
        self._bills = 0

    @property
    def ledger(self) -> Ledger:
        return self._ledger or ledger_for()

    # ----------------------------------------------------------------------------------- audit
    def _audit(self, event: str, **fields: Any) -> None:
        logger.info("a2m %s %s", event, " ".join(f"{k}={v}" for k, v in fields.items() if v is not None))
        if self.audit is not None:
            self.audit.write(event, action="a2m", app_id=self.settings.app_id, **fields)

    # ------------------------------------------------------------------------------------ bill
    async def bill(self, resource_id: str, *, reason: str | None = None) -> str:
        """A new order for ``resource_id`` (persisted first), and its signed ``Payment-Needed`` value."""
        amount = self.prices.get(resource_id, self.a2m.price)
        now = datetime.now(UTC)
        due = headers.pay_before(now, self.a2m.pay_window_seconds)
        bill = headers.Bill(out_trade_no=new_out_trade_no(), amount=amount, resource_id=resource_id,
                            pay_before=due, goods_name=self.a2m.goods_name, service_id=self.a2m.service_id,
                            seller_id=self.a2m.seller_id, seller_app_id=self.settings.app_id,
                            seller_name=self.a2m.seller_name)
        stamp = time.time()
        deadline = headers.parse_pay_before(due).timestamp()
        self._bills += 1
        sweep = self._bills % self.SWEEP_EVERY == 0

        def work(tx: Tx) -> None:
            if sweep:  # never paid and past any proof's grace: nothing can refer to them any more
                tx.run("DELETE FROM alipay_a2m_orders WHERE state = ? AND pay_before < ?",
                       (OPEN, stamp - self.a2m.proof_grace_seconds - 60.0))
            tx.run(f"INSERT INTO alipay_a2m_orders ({_COLUMNS}, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, "
                   "NULL, NULL, ?, ?)", (bill.out_trade_no, self.settings.app_id, resource_id, wire.cents(amount),
                                         bill.goods_name, deadline, OPEN, stamp, stamp))

        await self.ledger.transact(work)
        self._audit("a2m_bill", out_trade_no=bill.out_trade_no, amount=amount, resource_id=resource_id,
                    reason=reason)
        return bill.header(self.settings.app_private_key)

    async def refuse(self, resource_id: str, code: str, message: str, *, fresh_bill: bool,
                     trade_no: str | None = None, **extra: Any) -> PaymentRequiredError:
        """The 402 for a refusal: audited, with a new order's bill when a new payment is needed."""
        needed = await self.bill(resource_id, reason=code) if fresh_bill else None
        self._audit("a2m_refused", result=code, resource_id=resource_id, trade_no=trade_no, detail=message)
        return PaymentRequiredError(code, message, payment_needed=needed, trade_no=trade_no, **extra)

    # ----------------------------------------------------------------------------------- admit
    async def admit(self, proof_header: str | None, resource_id: str) -> Admission:
        """The proof's admission to serve ``resource_id`` once, or ``PaymentRequiredError`` (402)."""
        if proof_header is None or not proof_header.strip():
            raise await self.refuse(resource_id, "PAYMENT_REQUIRED", "this resource is paid per call: pay the "
                                    "bill in Payment-Needed and repeat the request with Payment-Proof",
                                    fresh_bill=True)
        try:
            proof = headers.parse_proof(proof_header)
        except ProtocolError as exc:
            raise await self.refuse(resource_id, "INVALID_PAYMENT_PROOF_FORMAT", str(exc), fresh_bill=True) from None
        self._audit("a2m_attempt", trade_no=proof.trade_no, resource_id=resource_id)
        bound = await self._order_of_trade(proof.trade_no)
        if bound is not None and bound.state in (SERVING, SERVED, CONFIRMED):
            await self._answer_bound(bound, resource_id, proof.trade_no)
        node = await self._verify(proof, resource_id)
        order = await self._check(node, proof, resource_id)
        return await self._claim(order, proof.trade_no, resource_id)

    async def _order_of_trade(self, trade_no: str) -> Order | None:
        row = await self.ledger.transact(lambda tx: tx.run(
            f"SELECT {_COLUMNS} FROM alipay_a2m_orders WHERE trade_no = ?", (trade_no,)).fetchone())
        return _order(row) if row else None

    async def _answer_bound(self, order: Order, resource_id: str, trade_no: str) -> None:
        """A trade already serving or served: never a second service (raises in every case)."""
        if order.state == SERVING and not self._stale(order):
            raise await self.refuse(resource_id, "PAYMENT_PROOF_IN_USE", "another request is being served with "
                                    "this Payment-Proof; if it fails, retry with the same proof",
                                    fresh_bill=False, trade_no=trade_no)
        if order.state == SERVING:
            return  # a crashed worker's claim: verified and claimed again below
        confirmed = order.state == CONFIRMED or (await self._take_confirm(order)
                                                 and await self._confirm(order.out_trade_no, trade_no))
        raise await self.refuse(resource_id, "ALREADY_FULFILLED", "this Payment-Proof was already served once; "
                                "a new request needs a new payment (Payment-Needed)", fresh_bill=True,
                                trade_no=trade_no, already_fulfilled=True, fulfillment_confirmed=confirmed)

    async def _take_confirm(self, order: Order) -> bool:
        """The confirm of a served order, for one request at a time: the serving request holds it while
        it confirms; one that failed gives it back; a crashed one's lapses after its attempts' time."""
        now = time.time()
        lapsed = now - self.a2m.confirm_timeout * self.a2m.confirm_attempts - 5.0
        return await self.ledger.transact(lambda tx: tx.run(
            "UPDATE alipay_a2m_orders SET claimed = ?, updated = ? WHERE out_trade_no = ? AND state = ? "
            "AND (claimed IS NULL OR claimed < ?)", (now, now, order.out_trade_no, SERVED, lapsed)).rowcount == 1)

    def _stale(self, order: Order) -> bool:
        return order.claimed is not None and time.time() - order.claimed > self.a2m.serve_lease_seconds

    async def _verify(self, proof: headers.Proof, resource_id: str) -> dict[str, Any]:
        biz = {"trade_no": proof.trade_no, "payment_proof": proof.payment_proof}
        if proof.client_session is not None:
            biz["client_session"] = proof.client_session  # verbatim (A2 step 8)
        result: PaymentResult = await self.methods.acall(VERIFY, biz, timeout=self.a2m.verify_timeout)
        node = result.node
        if not result.outcome_known or not result.sent or not node or str(node.get("code")) in ("20000", ""):
            # unknown (timeout, drop, unverifiable, busy): the payment may be good — never ask to pay again
            raise await self.refuse(resource_id, "VERIFY_UNAVAILABLE", "the payment could not be verified just now; "
                                    "retry with the same Payment-Proof", fresh_bill=False, trade_no=proof.trade_no)
        if node.get("code") != "10000":
            code = str(node.get("sub_code") or "VERIFY_FAILED")
            raise await self.refuse(resource_id, code, str(node.get("sub_msg") or "the payment proof is not valid"),
                                    fresh_bill=True, trade_no=proof.trade_no)
        return node

    async def _check(self, node: Mapping[str, Any], proof: headers.Proof, resource_id: str) -> Order:
        """A5.1's checks; the order they name, or a 402 with a fresh bill."""
        async def fail(code: str, message: str) -> PaymentRequiredError:
            return await self.refuse(resource_id, code, message, fresh_bill=True, trade_no=proof.trade_no)

        if node.get("active") is not True:  # exactly true (A5.1): not "true", not 1
            raise await fail("INVALID_PAYMENT_PROOF", "Alipay says this payment proof is not active")
        if str(node.get("trade_no") or proof.trade_no) != proof.trade_no:
            raise await fail("INVALID_PAYMENT_PROOF", "the proof's trade_no is not the verified trade")
        out_trade_no = str(node.get("out_trade_no") or "")
        if not out_trade_no:
            raise await fail("MISSING_OUT_TRADE_NO", "the verified payment names no order")
        row = await self.ledger.transact(lambda tx: tx.run(
            f"SELECT {_COLUMNS} FROM alipay_a2m_orders WHERE out_trade_no = ?", (out_trade_no,)).fetchone())
        order = _order(row) if row else None
        if order is None or order.app_id != self.settings.app_id:
            raise await fail("ORDER_NOT_FOUND", "the verified payment is for an order this merchant did not bill")
        try:
            paid = Decimal(str(node.get("amount")))
        except InvalidOperation:
            paid = Decimal(-1)
        if paid * 100 != order.amount_cents:
            raise await fail("AMOUNT_MISMATCH", "the verified amount is not the order's amount")
        verified_resource = str(node.get("resource_id") or "")
        if verified_resource != order.resource_id or order.resource_id != resource_id:
            raise await fail("RESOURCE_ID_MISMATCH", "the payment is for another resource")
        if order.trade_no not in (None, proof.trade_no):
            raise await fail("ORDER_ALREADY_PAID", "the order was paid by another trade")
        if order.state in (SERVED, CONFIRMED):
            raise await fail("ALREADY_FULFILLED", "the order was already served")
        if time.time() > order.pay_before + self.a2m.proof_grace_seconds:
            raise await fail("ORDER_EXPIRED", "the order's pay_before has passed")
        return order

    async def _claim(self, order: Order, trade_no: str, resource_id: str) -> Admission:
        """One conditional UPDATE: the only request that may serve this proof (lease for crashes)."""
        claim = secrets.token_hex(16)
        now = time.time()
        stale_before = now - self.a2m.serve_lease_seconds

        def work(tx: Tx) -> bool:
            other = tx.run("SELECT out_trade_no FROM alipay_a2m_orders WHERE trade_no = ? AND out_trade_no <> ?",
                           (trade_no, order.out_trade_no)).fetchone()
            if other is not None:
                return False
            return tx.run(
                "UPDATE alipay_a2m_orders SET state = ?, trade_no = ?, claim = ?, claimed = ?, updated = ? "
                "WHERE out_trade_no = ? AND (trade_no IS NULL OR trade_no = ?) AND (state IN (?, ?) "
                "OR (state = ? AND claimed < ?))",
                (SERVING, trade_no, claim, now, now, order.out_trade_no, trade_no, OPEN, PAID, SERVING,
                 stale_before)).rowcount == 1

        if not await self.ledger.transact(work):
            bound = await self._order_of_trade(trade_no)
            if bound is not None:
                await self._answer_bound(bound, resource_id, trade_no)
            raise await self.refuse(resource_id, "ALREADY_FULFILLED", "the order was already served", fresh_bill=True,
                                    trade_no=trade_no)
        self._audit("a2m_admitted", out_trade_no=order.out_trade_no, trade_no=trade_no, resource_id=resource_id,
                    amount=wire.yuan(order.amount_cents))
        return Admission(order.out_trade_no, trade_no, order.resource_id, wire.yuan(order.amount_cents), claim)

    # ---------------------------------------------------------------------------- after service
    async def fulfil(self, admission: Admission) -> bool:
        """The service succeeded: ``served`` first (never served again), then confirm. True if confirmed."""
        now = time.time()
        marked = await self.ledger.transact(lambda tx: tx.run(
            "UPDATE alipay_a2m_orders SET state = ?, claimed = ?, updated = ? WHERE out_trade_no = ? AND claim = ? "
            "AND state = ?", (SERVED, now, now, admission.out_trade_no, admission.claim, SERVING)).rowcount == 1)
        if not marked:  # its lease lapsed and another request took the proof: that one confirms
            self._audit("a2m_lost_claim", out_trade_no=admission.out_trade_no, trade_no=admission.trade_no)
            return False
        self._audit("a2m_served", out_trade_no=admission.out_trade_no, trade_no=admission.trade_no,
                    resource_id=admission.resource_id, amount=admission.amount)
        return await self._confirm(admission.out_trade_no, admission.trade_no)

    async def abandon(self, admission: Admission, reason: str = "the service failed") -> None:
        """The service failed: nothing is confirmed, the same proof may be retried."""
        now = time.time()
        await self.ledger.transact(lambda tx: tx.run(
            "UPDATE alipay_a2m_orders SET state = ?, claim = NULL, claimed = NULL, updated = ? "
            "WHERE out_trade_no = ? AND claim = ? AND state = ?",
            (PAID, now, admission.out_trade_no, admission.claim, SERVING)))
        self._audit("a2m_abandoned", out_trade_no=admission.out_trade_no, trade_no=admission.trade_no,
                    detail=reason)

    async def _confirm(self, out_trade_no: str, trade_no: str) -> bool:
        """``fulfillment.confirm`` (idempotent at Alipay: same trade, retried); ``confirmed`` on success."""
        for attempt in range(1, self.a2m.confirm_attempts + 1):
            result = await self.methods.acall(CONFIRM, {"trade_no": trade_no}, timeout=self.a2m.confirm_timeout)
            if result.node.get("code") == "10000":
                done = (CONFIRMED, time.time(), out_trade_no, SERVED)
                await self.ledger.transact(lambda tx, done=done: tx.run(
                    "UPDATE alipay_a2m_orders SET state = ?, updated = ? WHERE out_trade_no = ? AND state = ?", done))
                self._audit("a2m_confirmed", out_trade_no=out_trade_no, trade_no=trade_no, attempt=attempt)
                return True
            self._audit("a2m_confirm_failed", out_trade_no=out_trade_no, trade_no=trade_no, attempt=attempt,
                        result=str(result.node.get("sub_code") or result.node.get("code") or result.result.value))
        # given back: the next request with the proof confirms it
        await self.ledger.transact(lambda tx: tx.run(
            "UPDATE alipay_a2m_orders SET claimed = NULL WHERE out_trade_no = ? AND state = ?", (out_trade_no, SERVED)))
        return False

    async def order(self, out_trade_no: str) -> Order | None:
        """The order's row (tests, operators)."""
        row = await self.ledger.transact(lambda tx: tx.run(
            f"SELECT {_COLUMNS} FROM alipay_a2m_orders WHERE out_trade_no = ?", (out_trade_no,)).fetchone())
        return _order(row) if row else None
