"""Telling a misconfiguration from a fault: consecutive response-verification failures per deployment.

One response whose signature does not verify may be a fault on the way (the Router retries it, a 502).
Every response failing, with none verifying in between, is almost always the deployment's own
``alipay_public_key`` (or certificate) not being Alipay's key for this app — and a retrying, falling-back
Router would hide that. From the ``STREAK``-th consecutive failure on, the error says so.
"""

from __future__ import annotations

import threading
from typing import Any

from ..errors import SignatureError

#: Consecutive failures after which the error names the verification key as the likely cause.
STREAK = 3

_streaks: dict[int, int] = {}
_lock = threading.Lock()


def verified(settings: Any) -> None:
    """A response verified: the deployment's key is right, whatever failed before."""
    if _streaks.get(id(settings)):
        with _lock:
            _streaks.pop(id(settings), None)


def unverified(settings: Any, exc: SignatureError) -> SignatureError:
    """Count a verification failure; from the ``STREAK``-th in a row, the error names the likely cause."""
    with _lock:
        count = _streaks[id(settings)] = _streaks.get(id(settings), 0) + 1
    if count < STREAK:
        return exc
    key = "alipay_public_cert" if getattr(settings, "cert_ring", None) else "alipay_public_key"
    return SignatureError(
        f"{exc} — {count} responses in a row failed verification and none verified: {key} is probably not "
        f"Alipay's public key for app {getattr(settings, 'app_id', '?')} (take it from the Alipay console's "
        "'Alipay public key', not the app's own public key; `litellm-alipay check` tests it)")
