"""Delegation Pay's five methods on the trade methods' signer, transport, verification and error tree.

``apply`` only signs (the SDK's ``sdkExecute``): its string goes to the client app, which hands it to the
Alipay app where the user approves — no gateway round trip. ``query``, ``prepay``, ``pay`` and ``cancel``
are signed calls through ``PaymentMethods.acall`` (never raising for what Alipay or the network did),
each answer classified by this product's documented ``sub_code`` list: succeeded, needs confirmation
(``TRADE_HAS_SUCCESS``: paid before — confirm with the order query), retry with the same ids, failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ...errors import ConfigurationError
from .. import wire
from ..classify import Classified, ResultClass, classify
from ..methods import PaymentMethods, PaymentResult
from . import delegation_wire as dw

_RETRY, _FAILED, _CONFIRM = ResultClass.RETRY_SAME_ID, ResultClass.FAILED, ResultClass.NEEDS_CONFIRMATION
_BUSY = (_RETRY, "Alipay is busy; the outcome is unknown. Retry with the same ids (query first).")
_PARAM = (_FAILED, "A parameter is invalid; fix the request, do not retry it as is.")
_PAID = (_CONFIRM, "This order was paid before; confirm with the order query (nothing is paid twice).")

#: sub_code -> (class, one line a model can act on), per method (reference B3.1-B3.5)
SUB_CODES: dict[str, dict[str, tuple[ResultClass, str]]] = {
    dw.APPLY: {"SYSTEM_ERROR": _BUSY, "INVALID_PARAMETER": _PARAM},
    dw.QUERY: {
        "SYSTEM_ERROR": _BUSY, "INVALID_PARAMETER": _PARAM,
        "DELEGATION_NOT_EXIST": (_FAILED, "No such delegation task, or it was never signed."),
        "USER_AGREEMENT_NOT_EXIST": (_FAILED, "No such agreement, or the user terminated it."),
    },
    dw.PREPAY: {
        "SYSTEM_ERROR": _BUSY, "INVALID_PARAMETER": _PARAM,
        "ACCESS_FORBIDDEN": (_FAILED, "App Pay is not enabled for this app (Alipay console)."),
        "BUYER_ENABLE_STATUS_FORBID": (_FAILED, "The buyer's account status does not allow paying."),
        "BUYER_SELLER_EQUAL": (_FAILED, "Buyer and seller are the same account."),
        "CONTEXT_INCONSISTENT": (_FAILED, "The order number was used before with other details."),
        "EXIST_FORBIDDEN_WORD": (_FAILED, "The order's text contains forbidden words."),
        "NO_PAYMENT_INSTRUMENTS_AVAILABLE": (_FAILED, "The buyer has no usable payment instrument."),
        "PARTNER_ERROR": (_FAILED, "The app id is wrong for this method."),
        "TOTAL_FEE_EXCEED": (_FAILED, "The amount is out of range."),
        "TRADE_HAS_CLOSE": (_FAILED, "The order is closed; it cannot be paid."),
        "TRADE_HAS_SUCCESS": _PAID,
    },
    dw.PAY: {
        "SYSTEM_ERROR": _BUSY, "ACQ.SYSTEM_ERROR": _BUSY, "INVALID_PARAMETER": _PARAM, "ACQ.INVALID_PARAMETER": _PARAM,
        "ACQ.ACCESS_FORBIDDEN": (_FAILED, "No permission: the merchant's acquiring contract and the agent-pay "
                                          "product contract must both be in effect."),
        "ACQ.AGREEMENT_ERROR": (_FAILED, "The agreement and delegation do not match."),
        "ACQ.AGREEMENT_INVALID": (_FAILED, "The agreement is invalid; the user must sign a new mandate."),
        "ACQ.AGREEMENT_NOT_EXIST": (_FAILED, "The agreement is missing or the user terminated it; a new mandate "
                                             "is needed."),
        "ACQ.AGREEMENT_STATUS_NOT_NORMAL": (_FAILED, "The mandate is not active (finished, cancelled or expired)."),
        "ACQ.BEYOND_PAY_RESTRICTION": (_FAILED, "The payment passes the mandate's limits."),
        "ACQ.BUYER_BALANCE_NOT_ENOUGH": (_FAILED, "The buyer's balance is not enough."),
        "ACQ.ORDER_NOT_EXIST": (_FAILED, "No such order: the prepay_id is wrong or older than 2 hours."),
        "ACQ.PAYMENT_FAIL": (_RETRY, "The payment failed; retry with the same order (the order query tells "
                                     "whether it was paid)."),
        "ACQ.PAYMENT_REQUEST_HAS_RISK": (_FAILED, "Alipay's risk control refused the payment."),
        "ACQ.PRODUCT_AMOUNT_LIMIT_ERROR": (_FAILED, "The product's amount limit is exceeded."),
        "ACQ.TRADE_BUYER_NOT_MATCH": (_FAILED, "The buyer does not match the order."),
        "ACQ.TRADE_HAS_CLOSE": (_FAILED, "The order is closed (timed out); a new order is needed."),
        "ACQ.TRADE_HAS_SUCCESS": _PAID,
        "ACQ.TRADE_NOT_EXIST": (_FAILED, "No such trade; check the prepay_id."),
        "ACQ.TRADE_STATUS_ERROR": (_FAILED, "The order's status does not allow paying it."),
    },
    dw.CANCEL: {"SYSTEM_ERROR": _BUSY, "INVALID_PARAMETER": _PARAM},
}


def classify_delegation(method: str, node: Mapping[str, Any]) -> Classified:
    """The class of one verified answer of a Delegation Pay method (the trade table for the rest)."""
    code, sub_code = str(node.get("code") or ""), str(node.get("sub_code") or "")
    if code == "10000" and not sub_code:
        if method == dw.PREPAY and not node.get("prepay_id"):
            return Classified(_FAILED, "Prepaid without a prepay_id: the order was not made for an agent payment "
                                       "(payment_type=agent_pay, product_code=QUICK_MSECURITY_PAY).")
        return Classified(ResultClass.SUCCEEDED, "Done.")
    known = SUB_CODES.get(method, {}).get(sub_code)
    return Classified(*known) if known else classify(method, node)


@dataclass(frozen=True)
class SignedApply:
    """An apply request signed for the Alipay app: ``order_str`` goes to the client app, nowhere else."""

    order_str: str = field(repr=False)
    external_agreement_no: str
    external_delegation_id: str
    mandate: dict[str, str]


class DelegationMethods:
    """The Delegation Pay methods of one deployment (its ``PaymentMethods``)."""

    def __init__(self, methods: PaymentMethods) -> None:
        self.methods = methods
        self.settings = methods.settings

    def apply(self, *, agent_id: str, external_agreement_no: str, mandate: Mapping[str, str],
              conversation: list[Mapping[str, str]] | None = None, notify_url: str | None = None) -> SignedApply:
        """``alipay.user.agreement.delegation.apply`` signed locally (``mandate``: ``delegation_wire.
        delegation_params``); nothing is sent."""
        s = self.settings
        biz = dw.apply_biz(agent_id=agent_id, external_agreement_no=external_agreement_no, delegation=mandate,
                           conversation=conversation)
        text = dw.order_str(s.app_id, biz, s.app_private_key, charset=s.charset, sign_type=s.sign_type,
                            notify_url=notify_url, app_auth_token=s.app_auth_token, app_cert_sn=s.app_cert_sn,
                            alipay_root_cert_sn=s.alipay_root_cert_sn)
        return SignedApply(text, external_agreement_no, mandate["external_delegation_id"], dict(mandate))

    async def _call(self, method: str, biz: Mapping[str, Any], **kwargs: Any) -> PaymentResult:
        result = await self.methods.acall(method, biz, **kwargs)
        if not result.node.get("code"):
            return result  # not sent, or no answer to trust: the transport's verdict stands
        verdict = classify_delegation(method, result.node)
        known = not (verdict.result is _RETRY and result.node.get("code") != "10000")
        return replace(result, result=verdict.result, explanation=verdict.explanation, outcome_known=known)

    async def query(self, *, agreement_no: str | None = None, external_agreement_no: str | None = None,
                    delegation_id: str | None = None, external_delegation_id: str | None = None,
                    timeout: float | None = None) -> PaymentResult:
        if not (agreement_no or external_agreement_no) or not (delegation_id or external_delegation_id):
            raise ConfigurationError("delegation_id", "give agreement_no or external_agreement_no, and "
                                                      "delegation_id or external_delegation_id")
        biz = {"agreement_no": agreement_no, "delegation_id": delegation_id}
        if not agreement_no:
            biz["external_agreement_no"] = external_agreement_no
        if not delegation_id:
            biz["external_delegation_id"] = external_delegation_id
        return await self._call(dw.QUERY, {k: v for k, v in biz.items() if v}, timeout=timeout)

    async def prepay(self, *, out_trade_no: str, total_amount: Any, subject: str, notify_url: str | None = None,
                     seller_id: str | None = None, body: str | None = None, goods_id: str | None = None,
                     timeout_express: str | None = None, timeout: float | None = None) -> PaymentResult:
        """``alipay.trade.order.prepay`` for an agent payment (``prepay_id`` valid 2 hours); idempotent per
        ``out_trade_no``."""
        amount = wire.amount(total_amount, "total_amount")
        biz: dict[str, Any] = {"out_trade_no": dw.out_trade_no(out_trade_no), "total_amount": amount,
                               "subject": dw.subject(subject), "product_code": dw.PRODUCT_CODE,
                               "payment_type": dw.PAYMENT_TYPE, "seller_id": seller_id, "body": body,
                               "timeout_express": timeout_express}
        if goods_id:
            biz["goods_detail"] = [{"goods_id": goods_id, "goods_name": biz["subject"], "quantity": 1,
                                    "price": amount}]
        return await self._call(dw.PREPAY, biz, notify_url=notify_url, timeout=timeout)

    async def pay(self, *, prepay_id: str, agreement_no: str, delegation_id: str, notify_url: str | None = None,
                  timeout: float | None = None) -> PaymentResult:
        """``alipay.trade.agent.delegation.pay``: one payment under the mandate (``trade_no`` on success)."""
        for name, value in (("prepay_id", prepay_id), ("agreement_no", agreement_no),
                            ("delegation_id", delegation_id)):
            if not value:
                raise ConfigurationError(name, "is required")
        biz = {"prepay_id": prepay_id, "agreement_no": agreement_no, "delegation_id": delegation_id}
        return await self._call(dw.PAY, biz, notify_url=notify_url, timeout=timeout)

    async def cancel(self, *, agreement_no: str, delegation_id: str, timeout: float | None = None) -> PaymentResult:
        """``alipay.user.agreement.delegation.cancel`` (Alipay's ids only): the task becomes CANCELLED."""
        if not agreement_no or not delegation_id:
            raise ConfigurationError("delegation_id", "cancel needs Alipay's agreement_no and delegation_id")
        return await self._call(dw.CANCEL, {"agreement_no": agreement_no, "delegation_id": delegation_id},
                                timeout=timeout)

    async def order_query(self, out_trade_no: str, timeout: float | None = None) -> PaymentResult:
        """``alipay.trade.query`` of an agent payment's order: what reconciles a lost pay answer."""
        return await self.methods.query(out_trade_no=out_trade_no, timeout=timeout)
