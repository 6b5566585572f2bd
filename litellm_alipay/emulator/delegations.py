"""Delegation Pay in the emulator: mandates, their states, the five methods and the user's approval.

The user's side stands in as ``POST /_admin/delegations/approve``: the app's signed apply string is
checked (the app's own key, method, fields), its mandate read, and — approved — an agreement and a
delegation task are created (``NORMAL``), as the Alipay app's ``9000`` result would report them; refused,
the task is ``INVALID``. ``/_admin/delegations/terminate`` is the user ending the agreement in the app
(``TERMINATE`` + ``dut_user_unsign``). Time is the emulator's own clock (``POST /_admin/clock``), so a test
can step past the validity window or a prepay's two hours.

Rules (reference Part B; where it is silent, the choice is marked):

* repeating ``external_agreement_no`` returns the existing agreement, ``external_delegation_id`` the
  existing task — with other mandate values, the approval is refused (HTTP 400 naming the field; choice);
* prepay is idempotent per ``out_trade_no`` (same values: the same ``prepay_id``; others:
  ``CONTEXT_INCONSISTENT``; paid: ``TRADE_HAS_SUCCESS``); without ``payment_type=agent_pay`` and
  ``product_code=QUICK_MSECURITY_PAY`` it answers without a ``prepay_id``;
* pay checks, in order: the prepay (``ACQ.ORDER_NOT_EXIST`` unknown or past 2 h; ``ACQ.TRADE_HAS_SUCCESS``
  paid), the agreement (``ACQ.AGREEMENT_NOT_EXIST`` missing or terminated; ``ACQ.AGREEMENT_ERROR`` task
  of another agreement), the task (``ACQ.AGREEMENT_INVALID`` refused; ``ACQ.AGREEMENT_STATUS_NOT_NORMAL``
  otherwise not NORMAL — validity ended included), the mandate (``ACQ.BEYOND_PAY_RESTRICTION`` when the
  amount passes what remains or no payment remains: the nearest documented code); then the trade is
  paid (the trade book's ``TRADE_SUCCESS`` and its notification), the remainder decremented and the task
  ``FINISHED`` once amount or count is used up;
* cancel moves ``NORMAL`` to ``CANCELLED``; a cancelled task cancels again as a success (choice: cancel
  is idempotent); another terminal state is ``INVALID_PARAMETER`` (choice);
* the validity end is ``00:00:00`` of the end date (choice; the query reports it so);
* application-gateway notifications (``dut_user_sign``, ``dut_user_unsign``,
  ``dut_delegation_status_change``) go to the URL set by ``POST /_admin/delegations/gateway``, signed and
  re-sent like trade notifications.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..errors import ConfigurationError
from ..payments import wire
from ..payments.agent import delegation_wire as dw
from ..wire.signing import BEIJING, PublicKey, parse_beijing_timestamp, verify_params
from .trades import TradeBook, TradeFailure

_INVALID = "INVALID_PARAMETER"


@dataclass
class Task:
    """One delegation task (a mandate) under an agreement."""

    app_id: str
    agreement_no: str
    external_agreement_no: str
    delegation_id: str
    external_delegation_id: str
    desc: str
    tag: str | None
    max_total: int
    times_limit: int | None
    start: datetime
    end: datetime
    status: str = dw.NORMAL
    spent: int = 0
    paid: int = 0

    @property
    def remaining(self) -> int:
        return self.max_total - self.spent

    @property
    def remaining_times(self) -> int | None:
        return None if self.times_limit is None else self.times_limit - self.paid

    def same_mandate(self, params: dict[str, Any]) -> bool:
        return (params.get("delegation_desc"), wire.cents(params.get("max_total_amount")),
                dw.times(params.get("times_limit")), params.get("validity_start_time"),
                params.get("validity_end_time")) == (self.desc, self.max_total, self.times_limit,
                                                     self.start.date().isoformat(), self.end.date().isoformat())

    def node(self) -> dict[str, Any]:
        times_left = self.remaining_times
        return {"status": self.status, "agreement_no": self.agreement_no, "delegation_id": self.delegation_id,
                "external_delegation_id": self.external_delegation_id, "delegation_tag": self.tag or "",
                "validity_start_time": dw.stamp(self.start), "validity_end_time": dw.stamp(self.end),
                "max_total_amount": wire.yuan(self.max_total), "remaining_amount": wire.yuan(self.remaining),
                "times_limit": "" if self.times_limit is None else str(self.times_limit),
                "remaining_times": "" if times_left is None else str(times_left)}


@dataclass
class Agreement:
    app_id: str
    agreement_no: str
    external_agreement_no: str
    status: str = dw.NORMAL
    tasks: list[str] = field(default_factory=list)


@dataclass
class Prepay:
    app_id: str
    prepay_id: str
    out_trade_no: str
    total: int
    subject: str
    created: float


class DelegationStats:
    def __init__(self) -> None:
        self.approved = 0
        self.refused = 0
        self.payments_executed = 0
        self.paid_cents = 0
        self.cancels = 0
        self.terminations = 0

    def snapshot(self) -> dict[str, Any]:
        return {"approved": self.approved, "refused": self.refused, "payments_executed": self.payments_executed,
                "paid_amount": wire.yuan(self.paid_cents), "cancels": self.cancels,
                "terminations": self.terminations}


class DelegationBook:
    """Every app's agreements, tasks and prepays, over the emulator's trade book."""

    def __init__(self, trades: TradeBook, app_key: Callable[[str], PublicKey | None]) -> None:
        self.trades = trades
        self._app_key = app_key
        self.offset = 0.0  # seconds the emulator's clock is ahead of the host's
        self.reset()

    def reset(self) -> None:
        self.offset = 0.0
        self.agreements: dict[str, Agreement] = {}
        self.by_external_agreement: dict[tuple[str, str], str] = {}
        self.tasks: dict[str, Task] = {}
        self.by_external_task: dict[tuple[str, str], str] = {}
        self.prepays: dict[str, Prepay] = {}
        self.by_out_trade: dict[tuple[str, str], str] = {}
        self.gateway_urls: dict[str, str] = {}
        self.stats = DelegationStats()

    # ------------------------------------------------------------------------------------ clock
    def now(self) -> datetime:
        return datetime.now(BEIJING) + timedelta(seconds=self.offset)

    def advance(self, seconds: float) -> dict[str, Any]:
        """``POST /_admin/clock``: move the clock forward (never back: a mandate's life only goes on)."""
        if seconds < 0:
            raise ConfigurationError("advance_seconds", "must not be negative (the clock only moves forward)")
        self.offset += seconds
        for task in self.tasks.values():
            self._expire(task)
        return {"now": dw.stamp(self.now()), "offset_seconds": self.offset}

    def _expire(self, task: Task) -> None:
        if task.status == dw.NORMAL and self.now() >= task.end:
            task.status = dw.EXPIRED
            self._status_changed(task)

    # ------------------------------------------------------------------------- the user's side
    def set_gateway(self, app_id: str, url: str) -> None:
        """The app's application gateway (where ``dut_*`` notifications go)."""
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError("url", "must be an http(s) URL")
        self.gateway_urls[app_id] = url

    def approve(self, order_str: str, decision: str) -> dict[str, Any]:
        """The user's answer in the Alipay app to a signed apply string."""
        if decision not in ("approve", "refuse"):
            raise ConfigurationError("decision", "must be approve or refuse")
        params = dw.read_order_str(order_str)
        app_id = params.get("app_id", "")
        key = self._app_key(app_id)
        if key is None:
            raise ConfigurationError("order_str", "app_id is not a registered app")
        if not verify_params(params, key):
            raise ConfigurationError("order_str", "the app's signature on the apply string does not verify")
        if params.get("method") != dw.APPLY:
            raise ConfigurationError("order_str", f"method must be {dw.APPLY}")
        try:
            parse_beijing_timestamp(params.get("timestamp", ""))
        except ValueError:
            raise ConfigurationError("order_str", "timestamp must be yyyy-MM-dd HH:mm:ss") from None
        try:
            biz = json.loads(params.get("biz_content") or "")
        except ValueError:
            raise ConfigurationError("order_str", "biz_content is not JSON") from None
        mandate = self._read_apply(biz)
        ext_agreement = biz["external_agreement_no"]
        ext_task = mandate["external_delegation_id"]
        existing = self.by_external_task.get((app_id, ext_task))
        if existing is not None:
            task = self.tasks[existing]
            if not task.same_mandate(mandate):
                raise ConfigurationError("external_delegation_id", "already used for another mandate")
            return {"resultStatus": "9000", "agreement_no": task.agreement_no, "delegation_id": task.delegation_id,
                    "status": task.status}
        if decision == "refuse":
            self.stats.refused += 1
            return {"resultStatus": "6001", "status": dw.INVALID, "memo": "the user refused the delegation"}
        agreement = self._agreement(app_id, ext_agreement)
        start, end = dw.day(mandate["validity_start_time"], "validity_start_time"), \
            dw.day(mandate["validity_end_time"], "validity_end_time")
        task = Task(app_id, agreement.agreement_no, ext_agreement, "DL" + _digits(20), ext_task,
                    mandate["delegation_desc"], mandate.get("delegation_tag"),
                    wire.cents(wire.amount(mandate["max_total_amount"], "max_total_amount")),
                    dw.times(mandate.get("times_limit")), dw.window_start(start), dw.window_end(end))
        self.tasks[task.delegation_id] = task
        self.by_external_task[(app_id, ext_task)] = task.delegation_id
        agreement.tasks.append(task.delegation_id)
        self.stats.approved += 1
        self._expire(task)
        self._notify(app_id, {"notify_type": dw.SIGN_NOTIFY, "agreement_no": agreement.agreement_no,
                              "external_agreement_no": ext_agreement, "delegation_id": task.delegation_id,
                              "external_delegation_id": ext_task, "status": task.status,
                              "personal_product_code": dw.PERSONAL_PRODUCT_CODE, "sign_time": dw.stamp(self.now())})
        return {"resultStatus": "9000", "agreement_no": agreement.agreement_no, "delegation_id": task.delegation_id,
                "status": task.status}

    def _agreement(self, app_id: str, external: str) -> Agreement:
        number = self.by_external_agreement.get((app_id, external))
        if number is not None and self.agreements[number].status == dw.NORMAL:
            return self.agreements[number]
        agreement = Agreement(app_id, "2088" + _digits(16), external)
        self.agreements[agreement.agreement_no] = agreement
        self.by_external_agreement[(app_id, external)] = agreement.agreement_no
        return agreement

    @staticmethod
    def _read_apply(biz: Any) -> dict[str, Any]:
        if not isinstance(biz, dict):
            raise ConfigurationError("biz_content", "must be a JSON object")
        for name in ("agent_id", "external_agreement_no", "personal_product_code", "delegation_params",
                     "access_params", "conversation_history"):
            if name not in biz:
                raise ConfigurationError(name, "is required")
        dw.external_no(biz["external_agreement_no"], "external_agreement_no")
        if biz["personal_product_code"] != dw.PERSONAL_PRODUCT_CODE:
            raise ConfigurationError("personal_product_code", f"must be {dw.PERSONAL_PRODUCT_CODE}")
        if (biz.get("access_params") or {}).get("channel") != dw.CHANNEL:
            raise ConfigurationError("access_params.channel", f"must be {dw.CHANNEL}")
        history = biz["conversation_history"]
        if not isinstance(history, list) or len(history) > 10:
            raise ConfigurationError("conversation_history", "must be a list of at most 10 messages")
        mandate = biz["delegation_params"]
        if not isinstance(mandate, dict):
            raise ConfigurationError("delegation_params", "must be an object")
        for name in ("external_delegation_id", "delegation_desc", "max_total_amount", "validity_start_time",
                     "validity_end_time"):
            if not mandate.get(name):
                raise ConfigurationError(f"delegation_params.{name}", "is required")
        dw.external_no(mandate["external_delegation_id"], "external_delegation_id")
        wire.amount(mandate["max_total_amount"], "max_total_amount")
        dw.times(mandate.get("times_limit"))
        if dw.day(mandate["validity_end_time"], "validity_end_time") <= \
                dw.day(mandate["validity_start_time"], "validity_start_time"):
            raise ConfigurationError("validity_end_time", "must be after validity_start_time")
        return mandate

    def terminate(self, agreement_no: str) -> dict[str, Any]:
        """The user ends the agreement in the Alipay app: its tasks ``TERMINATE``, ``dut_user_unsign`` sent."""
        agreement = self.agreements.get(agreement_no)
        if agreement is None:
            raise ConfigurationError("agreement_no", "no such agreement")
        if agreement.status == dw.NORMAL:
            agreement.status = dw.TERMINATE
            self.stats.terminations += 1
            for task_id in agreement.tasks:
                task = self.tasks[task_id]
                if task.status == dw.NORMAL:
                    task.status = dw.TERMINATE
            self._notify(agreement.app_id, {"notify_type": dw.UNSIGN_NOTIFY, "agreement_no": agreement_no,
                                            "external_agreement_no": agreement.external_agreement_no,
                                            "status": "UNSIGN", "unsign_time": dw.stamp(self.now())})
        return {"agreement_no": agreement_no, "status": agreement.status}

    # ---------------------------------------------------------------------------------- methods
    def run(self, method: str, app_id: str, biz: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        handler = {dw.QUERY: self._query, dw.PREPAY: self._prepay, dw.PAY: self._pay, dw.CANCEL: self._cancel}[method]
        try:
            return {"code": "10000", "msg": "Success", **handler(app_id, biz, params)}
        except TradeFailure as failure:
            return failure.node

    def _task(self, app_id: str, biz: dict[str, Any]) -> Task:
        agreement_no, ext_agreement = biz.get("agreement_no"), biz.get("external_agreement_no")
        task_id, ext_task = biz.get("delegation_id"), biz.get("external_delegation_id")
        if not (agreement_no or ext_agreement) or not (task_id or ext_task):
            raise TradeFailure(_INVALID, "one of agreement_no/external_agreement_no and one of "
                                         "delegation_id/external_delegation_id are required")
        number = agreement_no or self.by_external_agreement.get((app_id, ext_agreement))
        agreement = self.agreements.get(number or "")
        if agreement is None or agreement.app_id != app_id:
            raise TradeFailure("USER_AGREEMENT_NOT_EXIST", "用户协议不存在")
        found = task_id or self.by_external_task.get((app_id, ext_task))
        task = self.tasks.get(found or "")
        if task is None or task.agreement_no != agreement.agreement_no:
            raise TradeFailure("DELEGATION_NOT_EXIST", "委托任务不存在")
        self._expire(task)
        return task

    def _query(self, app_id: str, biz: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        task = self._task(app_id, biz)
        return {**task.node(), "external_delegation_id": task.external_delegation_id}

    def _cancel(self, app_id: str, biz: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        if not biz.get("agreement_no") or not biz.get("delegation_id"):
            raise TradeFailure(_INVALID, "agreement_no and delegation_id are required")
        task = self._task(app_id, {"agreement_no": biz["agreement_no"], "delegation_id": biz["delegation_id"]})
        if task.status == dw.NORMAL:
            task.status = dw.CANCELLED
            self.stats.cancels += 1
            self._status_changed(task)
        elif task.status != dw.CANCELLED:
            raise TradeFailure(_INVALID, f"the delegation task is {task.status}; only a NORMAL task can be cancelled")
        return {}

    def _prepay(self, app_id: str, biz: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        try:
            number = dw.out_trade_no(biz.get("out_trade_no"))
            total = wire.cents(wire.amount(biz.get("total_amount"), "total_amount"))
            title = dw.subject(biz.get("subject"))
        except ConfigurationError as exc:
            raise TradeFailure(_INVALID, str(exc)) from None
        trade = self.trades.by_out.get((app_id, number))
        if trade is not None:
            if trade.status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                raise TradeFailure("TRADE_HAS_SUCCESS", "交易已被支付")
            if trade.status == "TRADE_CLOSED":
                raise TradeFailure("TRADE_HAS_CLOSE", "交易已经关闭")
            if trade.total != total or trade.subject != title:
                raise TradeFailure("CONTEXT_INCONSISTENT", "交易信息被篡改")
        else:
            trade = self.trades.create(app_id, {"out_trade_no": number, "total_amount": wire.yuan(total),
                                                "subject": title, "trade_status": "WAIT_BUYER_PAY",
                                                "notify_url": params.get("notify_url")})
        node = {"out_trade_no": number, "trade_no": trade.trade_no}
        if biz.get("payment_type") != dw.PAYMENT_TYPE or biz.get("product_code") != dw.PRODUCT_CODE:
            return node  # documented: no prepay_id outside the agent scenario
        prepay_id = self.by_out_trade.get((app_id, number))
        if prepay_id is None or self._stale(self.prepays[prepay_id]):
            prepay = Prepay(app_id, "PP" + secrets.token_hex(16), number, total, title, self._clock())
            self.prepays[prepay.prepay_id] = prepay
            self.by_out_trade[(app_id, number)] = prepay_id = prepay.prepay_id
        return {**node, "prepay_id": prepay_id}

    def _clock(self) -> float:
        return time.time() + self.offset

    def _stale(self, prepay: Prepay) -> bool:
        return self._clock() - prepay.created > dw.PREPAY_TTL

    def _pay(self, app_id: str, biz: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        for name in ("prepay_id", "agreement_no", "delegation_id"):
            if not biz.get(name):
                raise TradeFailure("ACQ.INVALID_PARAMETER", f"{name} is required")
        prepay = self.prepays.get(biz["prepay_id"])
        if prepay is None or prepay.app_id != app_id or self._stale(prepay):
            raise TradeFailure("ACQ.ORDER_NOT_EXIST", "订单不存在或已过期")
        trade = self.trades.by_out[(app_id, prepay.out_trade_no)]
        if trade.status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
            raise TradeFailure("ACQ.TRADE_HAS_SUCCESS", "交易已被支付", trade_no=trade.trade_no)
        if trade.status == "TRADE_CLOSED":
            raise TradeFailure("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
        agreement = self.agreements.get(biz["agreement_no"])
        if agreement is None or agreement.app_id != app_id or agreement.status != dw.NORMAL:
            raise TradeFailure("ACQ.AGREEMENT_NOT_EXIST", "协议不存在或已解约")
        task = self.tasks.get(biz["delegation_id"])
        if task is None or task.agreement_no != agreement.agreement_no:
            raise TradeFailure("ACQ.AGREEMENT_ERROR", "委托任务与协议不匹配")
        self._expire(task)
        if task.status == dw.INVALID:
            raise TradeFailure("ACQ.AGREEMENT_INVALID", "协议无效")
        if task.status != dw.NORMAL:
            raise TradeFailure("ACQ.AGREEMENT_STATUS_NOT_NORMAL", f"委托任务状态为 {task.status}")
        if prepay.total > task.remaining or task.remaining_times == 0:
            raise TradeFailure("ACQ.BEYOND_PAY_RESTRICTION", "超出委托支付限额")
        self.trades.pay(app_id, prepay.out_trade_no)
        task.spent += prepay.total
        task.paid += 1
        self.stats.payments_executed += 1
        self.stats.paid_cents += prepay.total
        if task.remaining == 0 or task.remaining_times == 0:
            task.status = dw.FINISHED
            self._status_changed(task)
        return {"trade_no": trade.trade_no}

    # ----------------------------------------------------------------------------- notifications
    def _status_changed(self, task: Task) -> None:
        self._notify(task.app_id, {"notify_type": dw.STATUS_NOTIFY, "agreement_no": task.agreement_no,
                                   "delegation_id": task.delegation_id,
                                   "external_delegation_id": task.external_delegation_id, "status": task.status})

    def _notify(self, app_id: str, fields: dict[str, str]) -> None:
        url = self.gateway_urls.get(app_id)
        if url is None:
            return
        params = {"notify_time": dw.stamp(self.now()), "notify_id": secrets.token_hex(16), "app_id": app_id,
                  "charset": "utf-8", "version": "1.0", **fields}
        self.trades.send_notification(url, params, app_id)


def _digits(n: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(n))
