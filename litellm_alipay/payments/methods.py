"""The trade methods over the same signer, transport, deadline and verification as the AI calls.

Each method takes typed inputs (amounts as 2-decimal strings, numbers accepted), sends one signed
request through ``Gateway.build_request`` and the pooled async transport, verifies the answer and
returns a ``PaymentResult``: the verified node as data, classified (``classify.py``). A transport
failure or an unverifiable answer is never an exception here: it is a result whose outcome is
unknown, because for money the caller's next step (reconcile, then retry with the same number)
depends on exactly that. Page and WAP payments only sign a URL (or form): no server call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..backends.gateway import Gateway
from ..errors import AlipayError, ConfigurationError, SignatureError, TransportError
from ..resilience.guards import remaining
from ..settings import AlipaySettings
from ..transport.http import transport_for
from ..transport.timing import clock, exchanged
from ..wire import protocol
from ..wire.signing import aes_decrypt, verify_response
from . import wire
from ._sync import run_sync
from .classify import Classified, ResultClass, classify, unknown_outcome

#: Node fields worth a model's attention (the rest stays in ``node``).
_SUMMARY_FIELDS = (
    "trade_no", "out_trade_no", "trade_status", "total_amount", "fund_change", "refund_fee", "refund_amount",
    "refund_status", "out_request_no", "qr_code", "bill_download_url", "action", "retry_flag", "gmt_refund_pay",
)


@dataclass(frozen=True)
class PaymentResult:
    """One method's outcome. ``sent`` is False when nothing reached Alipay; ``outcome_known`` False
    when it may have and no trustworthy answer came back."""

    method: str
    result: ResultClass
    explanation: str
    node: dict[str, Any] = field(default_factory=dict)
    out_request_no: str | None = None
    sent: bool = True
    outcome_known: bool = True
    reconciled: bool = False
    #: answered from the money ledger's record of an earlier attempt: nothing moved in this call
    replayed: bool = False

    @property
    def code(self) -> str | None:
        return self.node.get("code")

    @property
    def sub_code(self) -> str | None:
        return self.node.get("sub_code")

    @property
    def sub_msg(self) -> str | None:
        return self.node.get("sub_msg")

    @property
    def trade_no(self) -> str | None:
        return self.node.get("trade_no")

    def to_dict(self) -> dict[str, Any]:
        """The structured answer a tool returns to a model (no free text to parse)."""
        out: dict[str, Any] = {"method": self.method, "result": self.result.value, "explanation": self.explanation}
        for name in ("code", "sub_code", "sub_msg"):
            if self.node.get(name):
                out[name] = self.node[name]
        out.update({k: self.node[k] for k in _SUMMARY_FIELDS if self.node.get(k) not in (None, "")})
        if self.out_request_no:
            out["out_request_no"] = self.out_request_no
        if not self.outcome_known:
            out["outcome_known"] = False
        if self.reconciled:
            out["reconciled"] = True
        if self.replayed:
            out["replayed"] = True
        return out

    def to_record(self) -> dict[str, Any]:
        """What the money ledger keeps of an outcome, to answer every later attempt with it."""
        return {"method": self.method, "result": self.result.value, "explanation": self.explanation,
                "node": self.node, "out_request_no": self.out_request_no, "sent": self.sent,
                "outcome_known": self.outcome_known, "reconciled": self.reconciled}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> PaymentResult:
        return cls(record["method"], ResultClass(record["result"]), record["explanation"], dict(record["node"]),
                   record.get("out_request_no"), bool(record.get("sent", True)),
                   bool(record.get("outcome_known", True)), bool(record.get("reconciled", False)))


def trade_ref(out_trade_no: str | None, trade_no: str | None) -> dict[str, str]:
    """The trade selector of a request: ``trade_no`` wins (as at Alipay); one is required."""
    if trade_no:
        return {"trade_no": str(trade_no)}
    if out_trade_no:
        return {"out_trade_no": str(out_trade_no)}
    raise ConfigurationError("out_trade_no", "give out_trade_no (the merchant's order number) or trade_no")


def _clean(biz: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in biz.items() if v not in (None, "", [], {})}


class PaymentMethods:
    """The Open Platform trade methods of one deployment (its ``AlipaySettings``)."""

    def __init__(self, settings: AlipaySettings, gateway: Gateway | None = None) -> None:
        if not settings.verify_response:
            raise ConfigurationError("verify_response", "payment actions need verified answers; set it to true")
        self.settings = settings
        self.gateway = gateway or Gateway(settings)

    # ------------------------------------------------------------------------------- the call
    async def acall(self, method: str, biz: Mapping[str, Any], *, out_request_no: str | None = None,
                    notify_url: str | None = None, timeout: float | None = None) -> PaymentResult:
        """One signed call of ``method``; never raises for what Alipay or the network did."""
        s = self.settings
        deadline = self.gateway.deadline_for(timeout)
        key = self.gateway.guards.key(method, None)  # the breaker of this deployment's trade method
        try:
            trial = await self.gateway.guards.abefore(key, deadline)
        except AlipayError as exc:
            return PaymentResult(method, ResultClass.RETRY_SAME_ID, f"Not sent: {exc}", {}, out_request_no,
                                 sent=False)
        extra = {"notify_url": notify_url} if notify_url else None
        request, params = self.gateway.build_request(method, _clean(biz), read_timeout=remaining(deadline),
                                                     extra=extra)
        failure: BaseException | None = None
        try:
            transport = transport_for(s)
            started = clock()
            response = await transport.send(request)
            exchanged(started)  # an action loop's payment calls are upstream time of the LiteLLM call
            if response.status >= 500:
                raise TransportError(f"HTTP {response.status} from the gateway")
            decrypt = (lambda text: aes_decrypt(text, s.encrypt_key, s.charset)) if s.encrypt_key else None
            node = verify_response(response.content, method, s.response_key, s.sign_type, decrypt=decrypt,
                                   charset=s.charset)
        except (TransportError, SignatureError) as exc:
            failure = exc
            self.gateway.log_failure(method, params, exc)
            sent = getattr(exc, "sent", True)
            reason = "the answer's signature does not verify" if isinstance(exc, SignatureError) else str(exc)
            verdict = unknown_outcome(reason) if sent else Classified(
                ResultClass.RETRY_SAME_ID, f"Not sent ({exc}); retry with the same request number.")
            return PaymentResult(method, verdict.result, verdict.explanation, {}, out_request_no, sent=sent,
                                 outcome_known=not sent)
        finally:
            await self.gateway.guards.aafter(key, failure, trial)
        if node.get("_unsigned") or response.status == 429:
            verdict = unknown_outcome("an unsigned or throttled answer") if node.get("_unsigned") else Classified(
                ResultClass.RETRY_SAME_ID, "Throttled by Alipay; retry later with the same request number.")
            return PaymentResult(method, verdict.result, verdict.explanation, node, out_request_no,
                                 outcome_known=not node.get("_unsigned"))
        verdict = classify(method, node)
        known = not (verdict.result is ResultClass.RETRY_SAME_ID and node.get("code") != "10000")
        return PaymentResult(method, verdict.result, verdict.explanation, node, out_request_no,
                             outcome_known=known)

    def call(self, method: str, biz: Mapping[str, Any], **kwargs: Any) -> PaymentResult:
        return run_sync(self.acall(method, biz, **kwargs))

    # ---------------------------------------------------------------------------- the methods
    async def query(self, *, out_trade_no: str | None = None, trade_no: str | None = None,
                    query_options: Sequence[str] | None = None, timeout: float | None = None) -> PaymentResult:
        biz = {**trade_ref(out_trade_no, trade_no), "query_options": list(query_options or [])}
        return await self.acall(wire.QUERY, biz, timeout=timeout)

    async def refund(self, *, out_request_no: str, refund_amount: Any, out_trade_no: str | None = None,
                     trade_no: str | None = None, refund_reason: str | None = None,
                     timeout: float | None = None) -> PaymentResult:
        """The raw refund call: the toolkit derives ``out_request_no``; call this directly only with yours."""
        if not out_request_no:
            raise ConfigurationError("out_request_no", "is required: the same number for every retry of a refund")
        biz = {**trade_ref(out_trade_no, trade_no), "refund_amount": wire.amount(refund_amount, "refund_amount"),
               "out_request_no": out_request_no, "refund_reason": refund_reason}
        return await self.acall(wire.REFUND, biz, out_request_no=out_request_no, timeout=timeout)

    async def refund_query(self, *, out_request_no: str, out_trade_no: str | None = None,
                           trade_no: str | None = None, query_options: Sequence[str] | None = None,
                           timeout: float | None = None) -> PaymentResult:
        biz = {**trade_ref(out_trade_no, trade_no), "out_request_no": out_request_no,
               "query_options": list(query_options or [])}
        return await self.acall(wire.REFUND_QUERY, biz, out_request_no=out_request_no, timeout=timeout)

    async def close(self, *, out_trade_no: str | None = None, trade_no: str | None = None,
                    operator_id: str | None = None, timeout: float | None = None) -> PaymentResult:
        biz = {**trade_ref(out_trade_no, trade_no), "operator_id": operator_id}
        return await self.acall(wire.CLOSE, biz, timeout=timeout)

    async def cancel(self, *, out_trade_no: str | None = None, trade_no: str | None = None,
                     timeout: float | None = None) -> PaymentResult:
        return await self.acall(wire.CANCEL, trade_ref(out_trade_no, trade_no), timeout=timeout)

    async def precreate(self, *, out_trade_no: str, total_amount: Any, subject: str,
                        notify_url: str | None = None, timeout_express: str | None = None,
                        timeout: float | None = None) -> PaymentResult:
        biz = {"out_trade_no": _required("out_trade_no", out_trade_no),
               "total_amount": wire.amount(total_amount, "total_amount"),
               "subject": _required("subject", subject), "timeout_express": timeout_express}
        return await self.acall(wire.PRECREATE, biz, notify_url=notify_url, timeout=timeout)

    async def bill_url(self, *, bill_date: str, bill_type: str = "trade",
                       timeout: float | None = None) -> PaymentResult:
        biz = {"bill_type": bill_type, "bill_date": _required("bill_date", bill_date)}
        return await self.acall(wire.BILL_URL, biz, timeout=timeout)

    def payment_link(self, *, out_trade_no: str, total_amount: Any, subject: str, mobile: bool = False,
                     return_url: str | None = None, notify_url: str | None = None, form: bool = False,
                     quit_url: str | None = None) -> str:
        """``alipay.trade.page.pay`` (or ``wap.pay`` with ``mobile``): the signed cashier URL, or the
        auto-submitting form with ``form=True``. No server call: the buyer's browser makes it."""
        s = self.settings
        method = wire.WAP_PAY if mobile else wire.PAGE_PAY
        biz = _clean({"out_trade_no": _required("out_trade_no", out_trade_no),
                      "total_amount": wire.amount(total_amount, "total_amount"),
                      "subject": _required("subject", subject), "product_code": wire.PRODUCT_CODES[method],
                      "quit_url": quit_url if mobile else None})
        params = protocol.common_params(
            s.app_id, method, json.dumps(biz, ensure_ascii=False, separators=(",", ":")), charset=s.charset,
            sign_type=s.sign_type, app_auth_token=s.app_auth_token, app_cert_sn=s.app_cert_sn,
            alipay_root_cert_sn=s.alipay_root_cert_sn, return_url=return_url, notify_url=notify_url,
        )
        signed = protocol.sign_request(params, s.app_private_key)
        builder = wire.redirect_form if form else wire.redirect_url
        return builder(s.gateway_url, signed, s.charset)


def _required(name: str, value: Any) -> str:
    if value is None or not str(value).strip():
        raise ConfigurationError(name, "is required")
    return str(value)
