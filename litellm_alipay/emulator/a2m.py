"""A2M pay-per-use in the emulator: the buyer's stand-in and the merchant's two gateway methods.

* ``POST /_admin/a402/pay`` ``{"payment_needed": "<header value>"}`` plays the buyer's wallet and
  Alipay's cashier: the bill's ``seller_signature`` is checked against the public key of the app it
  names (``seller_app_id``) — a bad one is error ``10001``, as Alipay reports it to the buyer — the
  trade is created paid, and the answer carries the ``Payment-Proof`` value to send
  (``{"payment_proof": …, "trade_no": …}``). A bill paid once is not paid again (``ORDER_ALREADY_PAID``).
* ``alipay.aipay.agent.payment.verify`` answers ``active``, ``amount``, ``out_trade_no``,
  ``resource_id`` and ``trade_no`` for a genuine proof (``active: false`` for an unknown trade or a
  proof that is not the trade's);
* ``alipay.aipay.agent.fulfillment.confirm`` records the merchant's fulfilment (idempotent).

Faults (``FaultRule.kind``, on ``methods: [alipay.aipay.agent.payment.verify]``): ``a2m_inactive``
(verify answers ``active: false``), ``a2m_other_resource`` and ``a2m_other_amount`` (verify answers
another resource or amount than the bill's). A system error on confirm is the gateway's
``system_error`` with ``methods: [alipay.aipay.agent.fulfillment.confirm]``.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..errors import ProtocolError
from ..payments.agent import headers
from ..wire.signing import BEIJING
from .config import EmulatorConfig, FaultRule

VERIFY = "alipay.aipay.agent.payment.verify"
CONFIRM = "alipay.aipay.agent.fulfillment.confirm"
METHODS = frozenset({VERIFY, CONFIRM})
FAULT_KINDS = frozenset({"a2m_inactive", "a2m_other_resource", "a2m_other_amount"})

_MISSING = {"code": "40004", "msg": "Business Failed"}


class PayRefused(Exception):
    """The stand-in refuses to pay: ``code`` as the buyer CLI reports it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class A2MTrade:
    app_id: str
    trade_no: str
    out_trade_no: str
    amount: str
    resource_id: str
    payment_proof: str
    buyer_id: str
    confirmed: int = 0
    verified: int = 0


class A2MBook:
    """The emulator's A2M trades (single-threaded on the event loop, like the rest of its state)."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._seq = itertools.count(1)
        self.reset()

    def reset(self) -> None:
        self.trades: dict[str, A2MTrade] = {}
        self.paid_orders: dict[tuple[str, str], str] = {}

    # ----------------------------------------------------------------------------- the buyer
    def pay(self, payment_needed: Any, buyer_id: str = "2088000000000077") -> dict[str, str]:
        """Pay a bill as the buyer would: the seller signature checked, the trade created paid."""
        if not isinstance(payment_needed, str):
            raise PayRefused("INVALID_PARAMETER", "payment_needed must be the Payment-Needed header value")
        try:
            bill = headers.decode(payment_needed, headers.PAYMENT_NEEDED)
        except ProtocolError as exc:
            raise PayRefused("INVALID_PARAMETER", str(exc)) from None
        method = bill.get("method") if isinstance(bill.get("method"), dict) else {}
        protocol = bill.get("protocol") if isinstance(bill.get("protocol"), dict) else {}
        app = self.config.apps.get(str(method.get("seller_app_id") or ""))
        if app is None or not headers.verify_bill(bill, app.public_key):
            raise PayRefused("10001", "seller signature verification failed: check the signed content, the sign "
                             "type and the application public key")
        if protocol.get("currency") != "CNY":
            raise PayRefused("INVALID_PARAMETER", "only CNY is supported")
        try:
            due = headers.parse_pay_before(protocol["pay_before"])
        except ProtocolError as exc:
            raise PayRefused("INVALID_PARAMETER", str(exc)) from None
        if datetime.now(BEIJING) > due:
            raise PayRefused("ORDER_EXPIRED", "the bill's pay_before has passed")
        key = (app.app_id, str(protocol["out_trade_no"]))
        if key in self.paid_orders:
            raise PayRefused("ORDER_ALREADY_PAID", "this bill was already paid")
        trade_no = datetime.now(BEIJING).strftime("%Y%m%d") + f"{next(self._seq):024d}"  # 32 digits
        trade = A2MTrade(app.app_id, trade_no, key[1], str(protocol["amount"]), str(protocol["resource_id"]),
                         secrets.token_hex(32), buyer_id)
        self.trades[trade_no] = trade
        self.paid_orders[key] = trade_no
        session = base64.b64encode(json.dumps({"externalId": buyer_id, "signature": "-",
                                               "timestamp": int(time.time() * 1000)}).encode()).decode()
        proof = headers.Proof(trade_no, trade.payment_proof, session)
        return {"payment_proof": proof.header(), "trade_no": trade_no}

    # ------------------------------------------------------------------------- the merchant
    def run(self, method: str, app_id: str, biz: dict[str, Any], fault: FaultRule | None) -> dict[str, Any]:
        """The signed node of one A2M gateway method."""
        trade_no = str(biz.get("trade_no") or "")
        if not trade_no:
            return {**_MISSING, "sub_code": "INVALID_PARAMETER", "sub_msg": "trade_no is required"}
        trade = self.trades.get(trade_no)
        if method == CONFIRM:
            if trade is None or trade.app_id != app_id:
                return {**_MISSING, "sub_code": "TRADE_NOT_EXIST", "sub_msg": "no such trade"}
            trade.confirmed += 1
            return {"code": "10000", "msg": "Success", "trade_no": trade_no}
        if not biz.get("payment_proof"):
            return {**_MISSING, "sub_code": "INVALID_PARAMETER", "sub_msg": "payment_proof is required"}
        genuine = (trade is not None and trade.app_id == app_id
                   and secrets.compare_digest(str(biz["payment_proof"]), trade.payment_proof))
        kind = fault.kind if fault is not None else None
        if not genuine or kind == "a2m_inactive":
            return {"code": "10000", "msg": "Success", "active": False, "trade_no": trade_no}
        assert trade is not None
        trade.verified += 1
        amount, resource = trade.amount, trade.resource_id
        if kind == "a2m_other_amount":
            amount = str(Decimal(amount) + Decimal("1.00"))
        if kind == "a2m_other_resource":
            resource = resource + "/other"
        return {"code": "10000", "msg": "Success", "active": True, "amount": amount,
                "out_trade_no": trade.out_trade_no, "resource_id": resource, "trade_no": trade_no}

    def snapshot(self) -> list[dict[str, Any]]:
        return [{"trade_no": t.trade_no, "out_trade_no": t.out_trade_no, "amount": t.amount,
                 "resource_id": t.resource_id, "verified": t.verified, "confirmed": t.confirmed}
                for t in self.trades.values()]
