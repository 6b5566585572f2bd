"""The durable money ledger: what may not be lost, shared by every worker and proxy instance.

Claims and recorded outcomes per caller-scoped idempotency key, cap totals, pending proposals and
handled notifications live here — SQLite (a file, the embedded default, created on first use) on one
host, PostgreSQL (``ALIPAY_LEDGER_URL=postgresql://…``) when several instances share the money state.
What may be lost (quotas, breakers, the token cache) stays in Redis or memory.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping

from .book import (
    CLAIMED,
    FAILED,
    FINAL,
    SUCCEEDED,
    UNKNOWN,
    ActionRow,
    Hold,
    IdempotencyKeyReusedError,
    Ledger,
    RequestRecord,
)
from .engine import engine_for

#: the ledger's database: sqlite:///path/ledger.db (one host) or postgresql://user@host/db (shared)
LEDGER_ENV = "ALIPAY_LEDGER_URL"

_ledgers: dict[str, Ledger] = {}
_lock = threading.Lock()


def default_url(env: Mapping[str, str] | None = None) -> str:
    """``ALIPAY_LEDGER_URL``, else a SQLite file in the user's data folder (XDG)."""
    env = os.environ if env is None else env
    given = (env.get(LEDGER_ENV) or "").strip()
    if given:
        return given
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return "sqlite:///" + os.path.join(base, "litellm-alipay", "ledger.db")


def ledger_for(url: str | None = None) -> Ledger:
    """The process's one ``Ledger`` for ``url`` (default: ``default_url()``, read at each call)."""
    url = url or default_url()
    found = _ledgers.get(url)
    if found is None:
        with _lock:
            found = _ledgers.get(url)
            if found is None:
                found = _ledgers[url] = Ledger(engine_for(url))
    return found


def close_ledgers() -> None:
    """Close every ledger's connection and forget them (tests; a process that changes its URL)."""
    with _lock:
        found = list(_ledgers.values())
        _ledgers.clear()
    for ledger in found:
        ledger.engine.close()


def request_id(scope: str, key: str) -> str:
    """A logical request's id: the hash of its caller scope and key (keys are never stored). Not of the
    app: the record names the app the request went to, so a fallback to another app is seen."""
    return hashlib.sha256("\x1f".join(("request", scope, key)).encode()).hexdigest()


__all__ = ["CLAIMED", "FAILED", "FINAL", "LEDGER_ENV", "SUCCEEDED", "UNKNOWN", "ActionRow", "Hold",
           "IdempotencyKeyReusedError", "Ledger", "RequestRecord", "close_ledgers", "default_url", "ledger_for",
           "engine_for", "request_id"]
