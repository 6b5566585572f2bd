"""Every answer of a trade method as one of four result classes a model (and a payments team) can act on.

Pure: a verified response node (or a transport failure) in, a ``Classified`` out. The table below is
the business ``sub_code`` list of the reference (``shared/reference/ALIPAY_PAYMENTS.md`` §3, §5); an
unknown ``ACQ.*`` code on a money-moving method is ``failed`` (never retried blindly), an unknown
20000-class code is ``retry``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from . import wire


class ResultClass(str, Enum):  # noqa: UP042 - str() and format() stay the value on every 3.11 build
    SUCCEEDED = "succeeded"
    #: accepted, but whether money moved must be confirmed (refund with fund_change=N → refund query)
    NEEDS_CONFIRMATION = "needs_confirmation"
    #: outcome unknown or transient: retry with the *same* request number (never a new one)
    RETRY_SAME_ID = "retry_same_id"
    FAILED = "failed"


@dataclass(frozen=True)
class Classified:
    result: ResultClass
    explanation: str


_RETRY = ResultClass.RETRY_SAME_ID
_FAILED = ResultClass.FAILED

#: sub_code -> (class, one line a model can act on)
SUB_CODES: dict[str, tuple[ResultClass, str]] = {
    "ACQ.SYSTEM_ERROR": (_RETRY, "Alipay had a system error; the outcome is unknown. Retry with the same request "
                                 "number (the toolkit reconciles first)."),
    "isp.unknow-error": (_RETRY, "Alipay is busy; retry later with the same request number."),
    "aop.unknow-error": (_RETRY, "Alipay is busy; retry later with the same request number."),
    "SYSTEM_ERROR": (_RETRY, "Alipay is busy; retry later with the same request number."),
    "ACQ.INVALID_PARAMETER": (_FAILED, "A parameter is invalid; fix the request, do not retry it as is."),
    "ACQ.TRADE_NOT_EXIST": (_FAILED, "No such trade (or the buyer has not opened/scanned it yet); check the "
                                     "order number."),
    "ACQ.SELLER_BALANCE_NOT_ENOUGH": (_FAILED, "The merchant balance cannot cover the refund; top up, then retry "
                                               "with the same request number."),
    "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL": (_FAILED, "The refund amount does not match what may be refunded; a partial "
                                                "refund needs a request number and at most the refundable amount."),
    "ACQ.REASON_TRADE_REFUND_FEE_ERR": (_FAILED, "The refund amount is invalid or exceeds the refundable balance."),
    "ACQ.REASON_TRADE_BEEN_FREEZEN": (_FAILED, "The trade is frozen; contact Alipay support."),
    "ACQ.TRADE_HAS_FINISHED": (_FAILED, "The trade is finished; its refund window is over."),
    "ACQ.TRADE_STATUS_ERROR": (_FAILED, "The trade is not in a state that allows this (unpaid, closed or "
                                        "finished); query it first."),
    "ACQ.DISCORDANT_REPEAT_REQUEST": (_FAILED, "This request number was already used with different content; "
                                               "it is not the same refund."),
    "ACQ.TRADE_NOT_ALLOW_REFUND": (_FAILED, "This trade may not be refunded (status or contract)."),
    "ACQ.REASON_ILLEGAL_STATUS": (_FAILED, "The trade's status does not allow closing it."),
    "ACQ.REASON_TRADE_STATUS_INVALID": (_FAILED, "The trade's status does not allow closing it."),
    "ACQ.CANCEL_NOT_ALLOWED": (_FAILED, "This trade may not be cancelled."),
    "ACQ.TRADE_CANCEL_TIME_OUT": (_FAILED, "Too late to cancel; use a refund instead."),
    "ACQ.CONTEXT_INCONSISTENT": (_FAILED, "The order number was used before with different details."),
    "ACQ.TRADE_HAS_SUCCESS": (_FAILED, "The trade is already paid."),
    "ACQ.TRADE_HAS_CLOSE": (_FAILED, "The trade is already closed."),
    "ACQ.TOTAL_FEE_EXCEED": (_FAILED, "The amount exceeds the allowed total."),
    "ACQ.ACCESS_FORBIDDEN": (_FAILED, "This app is not allowed to call this method."),
    "isp.bill_not_exist": (_FAILED, "No bill for that date (daily bills are ready T+1, monthly after the 3rd)."),
    "isv.invalid-arguments": (_FAILED, "A parameter is invalid; fix the request."),
}


def classify(method: str, node: Mapping[str, Any]) -> Classified:
    """The class of one verified response node of ``method``."""
    code = str(node.get("code") or "")
    sub_code = str(node.get("sub_code") or "")
    if code == "10000" and not sub_code:
        if method == wire.REFUND and node.get("fund_change") != "Y":
            return Classified(ResultClass.NEEDS_CONFIRMATION,
                              "Accepted without a fund change (a repeat, or not yet settled); confirm with the "
                              "refund query before telling anyone money moved.")
        if method == wire.REFUND_QUERY and node.get("refund_status") != "REFUND_SUCCESS":
            return Classified(ResultClass.NEEDS_CONFIRMATION,
                              "No successful refund under this request number (yet); retry the refund with the "
                              "same number and amount if it should exist.")
        if method == wire.CANCEL and node.get("retry_flag") == "Y":
            return Classified(_RETRY, "Alipay asks to retry the cancel.")
        return Classified(ResultClass.SUCCEEDED, "Done.")
    known = SUB_CODES.get(sub_code)
    if known is not None:
        return Classified(*known)
    if code == "20000" or "SYSTEM_ERROR" in sub_code:
        return Classified(_RETRY, "Alipay is busy; retry later with the same request number.")
    if code == "20001":
        return Classified(_FAILED, "The app's authorisation token is invalid or expired.")
    if code == "40006":
        return Classified(_FAILED, "This app lacks the permission for this method (Alipay console).")
    return Classified(_FAILED, f"Alipay refused the request ({sub_code or code}); do not retry it as is.")


def unknown_outcome(reason: str) -> Classified:
    """A request that may have reached Alipay without an answer we can trust (timeout, drop, bad sign)."""
    return Classified(_RETRY, f"No trustworthy answer ({reason}); the outcome is unknown. Retry with the same "
                              "request number.")
