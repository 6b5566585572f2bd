"""Alipay's trade methods as safe, idempotent, audited actions (docs/payments/).

Rooms: ``wire`` (method names, amounts, notification signing: pure, shared with the emulator),
``classify`` (result classes, pure), ``idempotency`` (request numbers, pure), ``methods`` (the signed
calls), ``policy`` (what may run, caps, confirmation), ``audit`` (the JSON-lines trail), ``toolkit``
(the refund flow with reconciliation), ``store`` (state shared by workers, in process or Redis),
``notify`` (notification verifier and ASGI app), ``tools`` (OpenAI-format tool definitions and their
executor), ``cli`` (``litellm-alipay audit`` / ``notify``); ``agent/`` holds the agent products
(Delegation Pay: ``delegation*``, ``mandate``).

Names are imported lazily so the emulator can use ``wire`` without loading the client side.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "ResultClass": "classify", "PaymentResult": "methods", "PaymentMethods": "methods",
    "PaymentPolicy": "policy", "PolicyError": "policy", "AuditLog": "audit", "PaymentToolkit": "toolkit",
    "Proposal": "toolkit", "NotifyVerifier": "notify", "notify_app": "notify", "PaymentTools": "tools",
    "refund_request_no": "idempotency",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)
