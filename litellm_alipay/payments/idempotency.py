"""Request numbers derived, never invented: the at-most-once half that needs no storage.

The caller supplies one idempotency key per *logical* request (the same across every retry of it);
the model never does. The refund request number is a hash of (app, the caller-scoped key, action,
trade) — never of the amount, so a model that proposes another amount on a retry cannot make a new
number: the retry is answered from the money ledger's record, and a second, different refund of the
same trade needs a new key.
"""

from __future__ import annotations

import hashlib
import re

from ..errors import ConfigurationError

_KEY_CHARS = re.compile(r"^[\x21-\x7e]{8,255}$")


class IdempotencyKeyError(ConfigurationError):
    kind = "field"


def check_idempotency_key(key: object) -> str:
    """The key itself, or a ``ConfigurationError`` naming ``idempotency_key`` and the fix."""
    if not isinstance(key, str) or not _KEY_CHARS.match(key):
        raise IdempotencyKeyError(
            "idempotency_key",
            "is required for a money-moving action: 8-255 printable ASCII characters, the same for every "
            "retry of one logical request (e.g. the caller's order-operation id; never random, never "
            "from the model)",
        )
    return key


def refund_request_no(app_id: str, request_id: str, trade: str) -> str:
    """``out_request_no`` for the refund of ``trade`` under one logical request (``ledger.request_id``):
    32 characters (Alipay allows 64)."""
    material = "\x1f".join(("refund", app_id, request_id, trade)).encode("utf-8")
    return "rf" + hashlib.sha256(material).hexdigest()[:30]


def caller_of(scope: str) -> str:
    """The caller part of a scope (``<proxy key hash>|<tenant>``): what per-caller daily caps count."""
    caller, _, tenant = scope.partition("|")
    return caller if caller not in ("", "-") else f"tenant:{tenant or '-'}"
