"""Real trades for the emulator: the state machine and the documented semantics of the trade methods.

``WAIT_BUYER_PAY → TRADE_SUCCESS → TRADE_CLOSED`` (full refund); ``WAIT_BUYER_PAY → TRADE_CLOSED``
(close/cancel); ``TRADE_FINISHED`` is not refundable. Refunds are keyed by (trade, ``out_request_no``):
the same number and amount answers the first result with ``fund_change: "N"``, the same number with
another amount ``ACQ.DISCORDANT_REPEAT_REQUEST``. Failures keep ``refund_fee: "0.00"``. Every state
change is notified to the trade's ``notify_url`` (signed as Alipay signs notifications) and re-sent
on Alipay's schedule, scaled by ``notify_delay_scale``, until the receiver answers exactly ``success``.

Single-threaded like the rest of the emulator state: the methods run on the event loop without
awaiting, so a refund is decided atomically.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import ConfigurationError
from ..payments import wire
from ..wire.signing import BEIJING, PrivateKey

#: Alipay's resend schedule after the first attempt (seconds): 4m, 10m, 10m, 1h, 2h, 6h, 15h.
NOTIFY_SCHEDULE = (240, 600, 600, 3600, 7200, 21600, 54000)
BUSINESS_FAILED = {"code": "40004", "msg": "Business Failed"}


def _now() -> str:
    return datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


class TradeFailure(Exception):
    """A documented business failure: its node is answered (signed) like any other."""

    def __init__(self, sub_code: str, sub_msg: str, **fields: Any) -> None:
        super().__init__(sub_code)
        self.node = {**BUSINESS_FAILED, "sub_code": sub_code, "sub_msg": sub_msg, **fields}


@dataclass
class Refund:
    out_request_no: str
    amount: int
    reason: str | None
    gmt: str


@dataclass
class Trade:
    app_id: str
    out_trade_no: str
    trade_no: str
    total: int
    status: str
    subject: str = "emulated trade"
    notify_url: str | None = None
    refunded: int = 0
    gmt_create: str = field(default_factory=_now)
    gmt_payment: str | None = None
    gmt_close: str | None = None
    refunds: dict[str, Refund] = field(default_factory=dict)
    #: a sub_code every refund of this trade fails with (e.g. ACQ.SELLER_BALANCE_NOT_ENOUGH), for tests
    refund_error: str | None = None
    #: precreated trades exist for the merchant's query only once the buyer has scanned the code
    visible: bool = True
    qr_code: str | None = None

    def public(self) -> dict[str, Any]:
        return {"app_id": self.app_id, "out_trade_no": self.out_trade_no, "trade_no": self.trade_no,
                "total_amount": wire.yuan(self.total), "trade_status": self.status,
                "refund_fee": wire.yuan(self.refunded), "refunds": len(self.refunds)}


@dataclass
class Delivery:
    url: str
    params: dict[str, str]
    attempts: int = 0
    acked: bool = False


class TradeStats:
    def __init__(self) -> None:
        self.refunds_executed = 0
        self.refund_repeats = 0
        self.refunded_cents = 0
        self.closes = 0
        self.notify_attempts = 0
        self.notify_acked = 0

    def snapshot(self) -> dict[str, Any]:
        return {"refunds_executed": self.refunds_executed, "refund_repeats": self.refund_repeats,
                "refunded_amount": wire.yuan(self.refunded_cents), "closes": self.closes,
                "notify_attempts": self.notify_attempts, "notify_acked": self.notify_acked}


class TradeBook:
    """Every app's trades, by ``out_trade_no`` and by ``trade_no``."""

    def __init__(self, alipay_key: PrivateKey, sign_type_of: Callable[[str], str],
                 notify_delay_scale: float = 1.0) -> None:
        self._key = alipay_key
        self._sign_type_of = sign_type_of
        self.notify_delay_scale = notify_delay_scale
        self._seq = itertools.count(1)
        self.reset()

    def reset(self) -> None:
        self.by_out: dict[tuple[str, str], Trade] = {}
        self.by_no: dict[tuple[str, str], Trade] = {}
        self.stats = TradeStats()
        self.deliveries: list[Delivery] = []
        for task in getattr(self, "_tasks", set()):
            task.cancel()
        self._tasks: set[asyncio.Task] = set()

    # --------------------------------------------------------------------------------- creation
    def create(self, app_id: str, data: dict[str, Any]) -> Trade:
        """``POST /_admin/trades``: a trade in any state (default TRADE_SUCCESS, i.e. paid)."""
        out_trade_no = data.get("out_trade_no")
        if not isinstance(out_trade_no, str) or not out_trade_no.strip() or len(out_trade_no) > 64:
            raise ConfigurationError("out_trade_no", "is required (a string of at most 64 characters)")
        total = wire.cents(wire.amount(data.get("total_amount"), "total_amount"))
        status = data.get("trade_status", "TRADE_SUCCESS")
        if status not in wire.TRADE_STATUSES:
            raise ConfigurationError("trade_status", f"must be one of {', '.join(wire.TRADE_STATUSES)}")
        if (app_id, out_trade_no) in self.by_out:
            raise ConfigurationError("out_trade_no", f"{out_trade_no!r} already exists")
        trade = self._new(app_id, out_trade_no, total, status, data.get("subject"), data.get("notify_url"))
        trade.refund_error = data.get("refund_error") or None
        if status != "WAIT_BUYER_PAY":
            trade.gmt_payment = trade.gmt_create
        return trade

    def _new(self, app_id: str, out_trade_no: str, total: int, status: str, subject: Any,
             notify_url: Any) -> Trade:
        trade_no = datetime.now(BEIJING).strftime("%Y%m%d") + f"22{next(self._seq):012d}"
        trade = Trade(app_id, out_trade_no, trade_no, total, status, str(subject or "emulated trade"),
                      str(notify_url) if notify_url else None)
        self.by_out[(app_id, out_trade_no)] = trade
        self.by_no[(app_id, trade_no)] = trade
        return trade

    def pay(self, app_id: str, out_trade_no: str) -> Trade:
        """The buyer pays (or scans and pays) a waiting trade: TRADE_SUCCESS, notified."""
        trade = self.by_out.get((app_id, out_trade_no))
        if trade is None:
            raise ConfigurationError("out_trade_no", f"no trade {out_trade_no!r}")
        if trade.status != "WAIT_BUYER_PAY":
            raise ConfigurationError("trade_status", f"trade is {trade.status}, not WAIT_BUYER_PAY")
        trade.status, trade.visible, trade.gmt_payment = "TRADE_SUCCESS", True, _now()
        self._notify(trade)
        return trade

    # ---------------------------------------------------------------------------------- methods
    def run(self, method: str, app_id: str, biz: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        """The response node of one trade method (a documented failure node included)."""
        handler = {
            wire.QUERY: self._query, wire.REFUND: self._refund, wire.REFUND_QUERY: self._refund_query,
            wire.CLOSE: self._close, wire.CANCEL: self._cancel, wire.PRECREATE: self._precreate,
            wire.BILL_URL: self._bill_url,
        }[method]
        try:
            return {"code": "10000", "msg": "Success", **handler(app_id, biz, params)}
        except TradeFailure as failure:
            return failure.node

    def _find(self, app_id: str, biz: dict[str, Any], **fail_fields: Any) -> Trade:
        trade_no, out_trade_no = biz.get("trade_no"), biz.get("out_trade_no")
        if not trade_no and not out_trade_no:
            raise TradeFailure("ACQ.INVALID_PARAMETER", "out_trade_no or trade_no is required", **fail_fields)
        trade = self.by_no.get((app_id, trade_no)) if trade_no else self.by_out.get((app_id, out_trade_no))
        if trade is None or not trade.visible:
            raise TradeFailure("ACQ.TRADE_NOT_EXIST", "交易不存在", **fail_fields)
        return trade

    def _query(self, app_id: str, biz: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        trade = self._find(app_id, biz)
        node: dict[str, Any] = {
            "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "buyer_logon_id": "159****5620",
            "trade_status": trade.status, "total_amount": wire.yuan(trade.total),
            "buyer_user_id": "2088101117955611", "subject": trade.subject,
        }
        if trade.gmt_payment:
            node.update(buyer_pay_amount=wire.yuan(trade.total), receipt_amount=wire.yuan(trade.total),
                        invoice_amount=wire.yuan(trade.total), point_amount="0.00", send_pay_date=trade.gmt_payment)
        return node

    def _refund(self, app_id: str, biz: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        zero = {"out_trade_no": biz.get("out_trade_no") or "", "refund_fee": "0.00", "send_back_fee": "0.00"}
        try:
            amount = wire.cents(wire.amount(biz.get("refund_amount"), "refund_amount"))
        except ConfigurationError as exc:
            raise TradeFailure("ACQ.INVALID_PARAMETER", str(exc), **zero) from None
        trade = self._find(app_id, biz, **zero)
        zero["out_trade_no"] = trade.out_trade_no
        given_no = biz.get("out_request_no")
        request_no = str(given_no or trade.out_trade_no)
        done = trade.refunds.get(request_no)
        if done is not None:
            if done.amount != amount:
                raise TradeFailure("ACQ.DISCORDANT_REPEAT_REQUEST", "退款请求号对应的退款金额不一致", **zero)
            self.stats.refund_repeats += 1
            return self._refund_node(trade, "N", done)
        if trade.status == "TRADE_FINISHED":
            raise TradeFailure("ACQ.TRADE_HAS_FINISHED", "交易已完结", **zero)
        if trade.status != "TRADE_SUCCESS":
            raise TradeFailure("ACQ.TRADE_STATUS_ERROR", "交易状态不合法", **zero)
        if not given_no and amount != trade.total:
            raise TradeFailure("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "撤销或退款金额与订单金额不一致", **zero)
        if amount > trade.total - trade.refunded:
            raise TradeFailure("ACQ.REASON_TRADE_REFUND_FEE_ERR", "退款金额超过可退金额", **zero)
        if trade.refund_error:
            raise TradeFailure(trade.refund_error, "退款失败", **zero)
        refund = trade.refunds[request_no] = Refund(request_no, amount, biz.get("refund_reason"), _now())
        trade.refunded += amount
        self.stats.refunds_executed += 1
        self.stats.refunded_cents += amount
        if trade.refunded == trade.total:
            trade.status, trade.gmt_close = "TRADE_CLOSED", _now()
        self._notify(trade, out_biz_no=request_no)
        return self._refund_node(trade, "Y", refund)

    def _refund_node(self, trade: Trade, fund_change: str, refund: Refund) -> dict[str, Any]:
        return {
            "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "buyer_logon_id": "159****5620",
            "buyer_user_id": "2088101117955611", "fund_change": fund_change,
            "refund_fee": wire.yuan(trade.refunded), "gmt_refund_pay": refund.gmt, "send_back_fee": "0.00",
        }

    def _refund_query(self, app_id: str, biz: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        request_no = biz.get("out_request_no")
        if not request_no:
            raise TradeFailure("ACQ.INVALID_PARAMETER", "out_request_no is required")
        trade = self._find(app_id, biz)
        node: dict[str, Any] = {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
                                "out_request_no": request_no}
        refund = trade.refunds.get(request_no)
        if refund is None:
            return node  # 10000 without refund_status: nothing succeeded under this number
        node.update(total_amount=wire.yuan(trade.total), refund_amount=wire.yuan(refund.amount),
                    refund_status="REFUND_SUCCESS")
        if refund.reason:
            node["refund_reason"] = refund.reason
        options = biz.get("query_options") or []
        if "gmt_refund_pay" in options:
            node["gmt_refund_pay"] = refund.gmt
        if "refund_detail_item_list" in options:
            node["send_back_fee"] = "0.00"
            node["refund_detail_item_list"] = [{"fund_channel": "ALIPAYACCOUNT", "amount": wire.yuan(refund.amount)}]
        return node

    def _close(self, app_id: str, biz: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        trade = self._find(app_id, biz)
        if trade.status != "WAIT_BUYER_PAY":
            raise TradeFailure("ACQ.TRADE_STATUS_ERROR", "只有等待买家付款状态下才能发起交易关闭")
        trade.status, trade.gmt_close = "TRADE_CLOSED", _now()
        self.stats.closes += 1
        self._notify(trade)
        return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}

    def _cancel(self, app_id: str, biz: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        trade = self._find(app_id, biz)
        node = {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "retry_flag": "N"}
        if trade.status == "TRADE_FINISHED":
            raise TradeFailure("ACQ.TRADE_HAS_FINISHED", "交易已完结")
        if trade.status == "WAIT_BUYER_PAY":
            trade.status, trade.gmt_close = "TRADE_CLOSED", _now()
            self.stats.closes += 1
            self._notify(trade)
            return {**node, "action": "close"}
        if trade.status == "TRADE_CLOSED":
            return {**node, "action": "close"}
        if trade.refunded:
            raise TradeFailure("ACQ.REASON_TRADE_REFUND_FEE_ERR", "交易已有退款，不能撤销")
        trade.refunds[trade.out_trade_no] = Refund(trade.out_trade_no, trade.total, "cancel", _now())
        trade.refunded = trade.total
        trade.status, trade.gmt_close = "TRADE_CLOSED", _now()
        self.stats.refunds_executed += 1
        self.stats.refunded_cents += trade.total
        self._notify(trade)
        return {**node, "action": "refund", "gmt_refund_pay": trade.gmt_close}

    def _precreate(self, app_id: str, biz: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        out_trade_no, subject = biz.get("out_trade_no"), biz.get("subject")
        if not out_trade_no or not subject:
            raise TradeFailure("ACQ.INVALID_PARAMETER", "out_trade_no, total_amount and subject are required")
        try:
            total = wire.cents(wire.amount(biz.get("total_amount"), "total_amount"))
        except ConfigurationError as exc:
            raise TradeFailure("ACQ.INVALID_PARAMETER", str(exc)) from None
        trade = self.by_out.get((app_id, out_trade_no))
        if trade is not None:
            if trade.status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                raise TradeFailure("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
            if trade.status == "TRADE_CLOSED":
                raise TradeFailure("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
            if trade.total != total or trade.subject != subject:
                raise TradeFailure("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
        else:
            trade = self._new(app_id, out_trade_no, total, "WAIT_BUYER_PAY", subject, params.get("notify_url"))
            trade.visible = False
            trade.qr_code = "https://qr.alipay.com/" + secrets.token_hex(9)
        return {"out_trade_no": out_trade_no, "qr_code": trade.qr_code}

    def _bill_url(self, app_id: str, biz: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        bill_type, bill_date = biz.get("bill_type"), str(biz.get("bill_date") or "")
        if bill_type not in ("trade", "signcustomer"):
            raise TradeFailure("isv.invalid-arguments", "bill_type must be trade or signcustomer",
                               code="40002", msg="Invalid Arguments")
        today = datetime.now(BEIJING).date()
        try:
            if len(bill_date) == 10:
                day = datetime.strptime(bill_date, "%Y-%m-%d").date()
                ready = datetime(2016, 1, 1).date() <= day < today
            else:
                month = datetime.strptime(bill_date, "%Y-%m").date()
                ready = month < today.replace(day=1) and month.year >= 2016
        except ValueError:
            raise TradeFailure("isv.invalid-arguments", "bill_date must be yyyy-MM-dd or yyyy-MM",
                               code="40002", msg="Invalid Arguments") from None
        if not ready:
            raise TradeFailure("isp.bill_not_exist", "账单不存在")
        expires = int(time.time()) + 30
        return {"bill_download_url": f"https://dwbillcenter.alipay.com/downloadBillFile.resource?bizType={bill_type}"
                                     f"&fileType=csv.zip&billDate={bill_date}&expires={expires}&sign=emulated"}

    # ----------------------------------------------------------------------------- notifications
    def _notify(self, trade: Trade, out_biz_no: str | None = None) -> None:
        if not trade.notify_url:
            return
        params = {
            "notify_time": _now(), "notify_type": "trade_status_sync", "notify_id": secrets.token_hex(16),
            "app_id": trade.app_id, "charset": "utf-8", "version": "1.0", "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no, "trade_status": trade.status,
            "total_amount": wire.yuan(trade.total), "receipt_amount": wire.yuan(trade.total),
            "buyer_id": "2088101117955611", "seller_id": "2088102146225135", "subject": trade.subject,
            "gmt_create": trade.gmt_create,
        }
        for name, value in (("gmt_payment", trade.gmt_payment), ("gmt_close", trade.gmt_close)):
            if value:
                params[name] = value
        if trade.refunded:
            params["refund_fee"] = wire.yuan(trade.refunded)
            params["gmt_refund"] = _now()
        if out_biz_no:
            params["out_biz_no"] = out_biz_no
        self.send_notification(trade.notify_url, params, trade.app_id)

    def send_notification(self, url: str, params: dict[str, str], app_id: str) -> Delivery:
        """Sign ``params`` as Alipay signs notifications and POST them to ``url`` on Alipay's schedule
        (also the delegation notifications to an app's application gateway)."""
        delivery = Delivery(url, wire.sign_notify(params, self._key, self._sign_type_of(app_id)))
        self.deliveries.append(delivery)
        try:
            task = asyncio.get_running_loop().create_task(self._deliver(delivery))
        except RuntimeError:
            return delivery  # no loop (a unit test driving the book directly): the delivery stays queued
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return delivery

    async def _deliver(self, delivery: Delivery) -> None:
        import httpx

        async with httpx.AsyncClient(timeout=10) as client:
            for delay in (0, *NOTIFY_SCHEDULE):
                if delay:
                    await asyncio.sleep(delay * self.notify_delay_scale)
                delivery.attempts += 1
                self.stats.notify_attempts += 1
                try:
                    resp = await client.post(delivery.url, data=delivery.params)
                    if resp.status_code == 200 and resp.content == b"success":
                        delivery.acked = True
                        self.stats.notify_acked += 1
                        return
                except httpx.HTTPError:
                    pass


