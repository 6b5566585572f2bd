"""The payment actions as OpenAI-format tools, for any model LiteLLM can call, and their executor.

``PaymentTools.definitions()`` lists the deployment's enabled actions only (read-only by default).
``aexecute(tool_call, idempotency_key=…)`` runs one model tool call through the toolkit (policy,
confirmation, at most once, audit) and returns the ``role: tool`` message for the model. The model
supplies business arguments only: no request number, no idempotency key, no confirmation — those
come from the caller. Refusals come back as structured content the model can act on, never as a
secret-bearing exception. ``execute`` is the sync driver; the MCP server builds on the same API.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from ._sync import run_sync
from .methods import PaymentResult
from .policy import ACTIONS, PolicyError
from .toolkit import PaymentToolkit, Proposal

_TRADE = {
    "out_trade_no": {"type": "string", "description": "The merchant's order number."},
    "trade_no": {"type": "string", "description": "Alipay's trade number (wins over out_trade_no)."},
}
_AMOUNT = {"type": "string", "pattern": r"^\d+(\.\d{1,2})?$", "description": "Yuan, at most 2 decimals, e.g. 12.50"}

SPECS: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    "query_payment": ("Look up a payment: its status (WAIT_BUYER_PAY, TRADE_SUCCESS, TRADE_CLOSED, TRADE_FINISHED), "
                      "amount and Alipay trade number.", dict(_TRADE), []),
    "query_refund": ("Check whether a refund succeeded, by the out_request_no a refund result reported.",
                     {**_TRADE, "out_request_no": {"type": "string", "description": "From the refund's result."}},
                     ["out_request_no"]),
    "bill_download_url": ("Get the download URL of the merchant's reconciliation bill for a past day "
                          "(yyyy-MM-dd, ready the next day) or month (yyyy-MM). The URL expires in 30 seconds.",
                          {"bill_date": {"type": "string"},
                           "bill_type": {"type": "string", "enum": ["trade", "signcustomer"]}}, ["bill_date"]),
    "refund": ("Refund (part of) a paid order. Safe to retry: the same request from the user refunds once.",
               {**_TRADE, "refund_amount": _AMOUNT,
                "refund_reason": {"type": "string", "maxLength": 256}}, ["refund_amount"]),
    "close_payment": ("Close an unpaid order so it can no longer be paid.", dict(_TRADE), []),
    "cancel_payment": ("Cancel an order: closes it if unpaid, refunds it in full if paid.", dict(_TRADE), []),
    "create_payment": ("Create a QR-code payment for an order (the buyer scans it with Alipay).",
                       {"out_trade_no": _TRADE["out_trade_no"], "total_amount": _AMOUNT,
                        "subject": {"type": "string", "maxLength": 256}},
                       ["out_trade_no", "total_amount", "subject"]),
    # Delegation Pay (payments/agent/): the user authorizes once, the agent pays within the mandate
    "propose_mandate": ("Ask the user for a payment mandate (a total in yuan, optionally a number of payments, "
                        "valid for some days). Returns order_str for the user's Alipay app, where they approve it; "
                        "nothing is paid. Use the mandate_id it returns afterwards.",
                        {"delegation_desc": {"type": "string", "maxLength": 256,
                                             "description": "What the user delegates, in their words."},
                         "max_total_amount": _AMOUNT,
                         "times_limit": {"type": "integer", "minimum": 1, "description": "At most this many payments."},
                         "valid_days": {"type": "integer", "minimum": 1, "maximum": 365},
                         "delegation_tag": {"type": "string", "maxLength": 64}},
                        ["delegation_desc", "max_total_amount", "valid_days"]),
    "mandate_status": ("Look up a mandate: its status (SIGNING, NORMAL, FINISHED, CANCELLED, EXPIRED, TERMINATE, "
                       "INVALID), remaining amount and payments, validity.",
                       {"mandate_id": {"type": "string"}}, ["mandate_id"]),
    "pay_under_mandate": ("Pay for a purchase within an approved mandate (checked before anything is sent). Safe to "
                          "retry: the same request from the user pays once.",
                          {"mandate_id": {"type": "string"}, "total_amount": _AMOUNT,
                           "subject": {"type": "string", "maxLength": 256, "description": "What is bought."},
                           "goods_id": {"type": "string", "maxLength": 64},
                           "seller_id": {"type": "string", "maxLength": 28, "description": "The payee's 2088 id."}},
                          ["mandate_id", "total_amount", "subject"]),
    "cancel_mandate": ("Cancel a mandate: no further payment can be made under it.",
                       {"mandate_id": {"type": "string"}}, ["mandate_id"]),
}


@dataclass(frozen=True)
class ToolOutcome:
    """One executed tool call: ``message`` for the model; ``proposal`` (with its token) for the caller."""

    tool_call_id: str
    name: str
    content: dict[str, Any]
    result: PaymentResult | None = None
    proposal: Proposal | None = None

    @property
    def message(self) -> dict[str, Any]:
        return {"role": "tool", "tool_call_id": self.tool_call_id,
                "content": json.dumps(self.content, ensure_ascii=False)}


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


class PaymentTools:
    """Tools over one ``PaymentToolkit``."""

    def __init__(self, toolkit: PaymentToolkit) -> None:
        self.toolkit = toolkit

    def definitions(self) -> list[dict[str, Any]]:
        """OpenAI-format ``tools`` for the enabled actions (LiteLLM maps them for every provider)."""
        enabled = self.toolkit.policy.enabled_actions
        return [_definition(name) for name in SPECS if name in enabled]

    async def aexecute(self, tool_call: Any, *, idempotency_key: str | None = None, tenant: str | None = None,
                       trace_id: str | None = None, scope: str | None = None, several: bool = False) -> ToolOutcome:
        """Run one tool call (an OpenAI dict or LiteLLM's ``ChatCompletionMessageToolCall``) under the
        caller's ``idempotency_key`` (and ``scope``: who owns the key); see ``PaymentToolkit.arun``."""
        function = _field(tool_call, "function") or {}
        name, call_id = str(_field(function, "name") or ""), str(_field(tool_call, "id") or "")
        try:
            args = _arguments(_field(function, "arguments"))
            if name not in SPECS:
                raise PolicyError("tools", f"{name!r} is not a payment tool")
            allowed = SPECS[name][1]
            clean = {k: v for k, v in args.items() if k in allowed}  # a model-invented request number is dropped
            outcome = await self.toolkit.arun(name, clean, idempotency_key=idempotency_key, tenant=tenant,
                                              trace_id=trace_id, scope=scope, several=several)
        except (PolicyError, ConfigurationError) as exc:
            return ToolOutcome(call_id, name, {"result": "refused", "setting": exc.setting, "explanation": str(exc)})
        if isinstance(outcome, Proposal):
            return ToolOutcome(call_id, name, outcome.to_dict(), proposal=outcome)
        return ToolOutcome(call_id, name, outcome.to_dict(), result=outcome)

    def execute(self, tool_call: Any, **kwargs: Any) -> ToolOutcome:
        return run_sync(self.aexecute(tool_call, **kwargs))

    async def aexecute_all(self, tool_calls: Iterable[Any], **kwargs: Any) -> list[ToolOutcome]:
        """Every tool call of one assistant message, in order (money-moving calls are not raced): one logical
        request that may act on several trades (``several``), each (action, trade) claimed once under the key."""
        kwargs.setdefault("several", True)
        return [await self.aexecute(call, **kwargs) for call in tool_calls or ()]

    def execute_all(self, tool_calls: Iterable[Any], **kwargs: Any) -> list[ToolOutcome]:
        return run_sync(self.aexecute_all(list(tool_calls or ()), **kwargs))


def _definition(name: str) -> dict[str, Any]:
    description, properties, required = SPECS[name]
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": properties, "required": required,
                       "additionalProperties": False},
    }}


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        value = json.loads(raw or "{}")
    except (TypeError, ValueError):
        raise ConfigurationError("arguments", "the tool call's arguments are not JSON") from None
    if not isinstance(value, dict):
        raise ConfigurationError("arguments", "the tool call's arguments must be a JSON object")
    return value


assert set(SPECS) == set(ACTIONS)
