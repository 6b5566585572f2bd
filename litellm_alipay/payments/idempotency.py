"""Request numbers derived, never invented: the at-most-once half that needs no storage.

The caller supplies one idempotency key per *logical* request (the same across every retry of it);
the model never does. The refund request number is a hash of (app, key, trade, amount), so every
retry of the same logical refund reuses the same ``out_request_no`` and Alipay refunds it once,
while a different amount or trade under the same key is a different number (not a replay).
"""

from __future__ import annotations

import hashlib
import re

from ..errors import ConfigurationError

_KEY_CHARS = re.compile(r"^[\x21-\x7e]{8,255}$")


def check_idempotency_key(key: object) -> str:
    """The key itself, or a ``ConfigurationError`` naming ``idempotency_key`` and the fix."""
    if not isinstance(key, str) or not _KEY_CHARS.match(key):
        raise ConfigurationError(
            "idempotency_key",
            "is required for a money-moving action: 8-255 printable ASCII characters, the same for every "
            "retry of one logical request (e.g. the caller's order-operation id; never random, never "
            "from the model)",
        )
    return key


def refund_request_no(app_id: str, idempotency_key: str, trade: str, amount: str) -> str:
    """``out_request_no`` for one logical refund: 32 hex characters (Alipay allows 64)."""
    check_idempotency_key(idempotency_key)
    material = "\x1f".join(("refund", app_id, idempotency_key, trade, amount)).encode("utf-8")
    return "rf" + hashlib.sha256(material).hexdigest()[:30]
