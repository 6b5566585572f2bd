"""The audit trail: one append-only JSON line per attempt and per outcome of every payment action.

Each line is written with a single ``write`` on an ``O_APPEND`` descriptor under an exclusive
``flock``, then ``fsync``-ed, before the action's answer is returned: several workers (processes or
threads) can append to one file without interleaving, and an answer never exists without its line.
Arguments are recorded without secrets (``errors.redact`` plus notification signatures).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, redact
from ..wire.signing import BEIJING

_SECRET_ARGS = frozenset({"sign", "idempotency_key", "confirmation_token", "auth_code", "api_key"})


def safe_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments fit for the trail: keys, tokens, signatures and idempotency keys masked."""
    return {k: ("***" if str(k).lower() in _SECRET_ARGS else v) for k, v in redact(dict(args)).items()}


class AuditLog:
    """Appends to ``path`` (created with mode 600); ``fsync`` off only for benchmarks."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path).expanduser()
        self.fsync = fsync
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError("payments.audit_log",
                                     f"cannot create {self.path.parent}: {exc.strerror}") from None

    def write(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one line and return the record; ``event`` is attempt, outcome, proposal, notify…"""
        record = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                  "day": datetime.now(BEIJING).strftime("%Y-%m-%d"), "event": event}
        record.update({k: v for k, v in fields.items() if v is not None})
        if "args" in record:
            record["args"] = safe_args(record["args"])
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock
        return record


def read_records(path: str | os.PathLike[str], day: str | None = None) -> Iterator[dict[str, Any]]:
    """The trail's records (of one Beijing ``day`` when given); a torn last line is skipped."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if day is None or record.get("day") == day:
                yield record


def totals(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per action and result class counts, and the refunded amount that certainly moved."""
    outcomes = [r for r in records if r.get("event") == "outcome"]
    refunded = sum((Decimal(r.get("amount") or "0") for r in outcomes
                    if r.get("action") == "refund" and r.get("result") == "succeeded"), Decimal("0"))
    by = Counter(f"{r.get('action')}:{r.get('result')}" for r in outcomes)
    return {"records": len(records), "outcomes": dict(sorted(by.items())), "refunded": f"{refunded:.2f}",
            "notifications": sum(1 for r in records if r.get("event") == "notify")}


def print_day(path: str, day: str | None) -> int:
    """``litellm-alipay audit``: a day's actions, one per line, then the totals."""
    day = day or datetime.now(BEIJING).strftime("%Y-%m-%d")
    try:
        records = list(read_records(path, day))
    except OSError as exc:
        print(f"audit: cannot read {path}: {exc.strerror}")
        return 1
    for r in records:
        if r.get("event") in ("outcome", "proposal", "notify", "refused"):
            print(f"{r['time']}  {r.get('event'):<8} {r.get('action', '-'):<18} {r.get('result', '-'):<19} "
                  f"trade={r.get('out_trade_no') or r.get('trade_no') or '-'} amount={r.get('amount', '-')} "
                  f"request_no={r.get('out_request_no', '-')} tenant={r.get('tenant', '-')}")
    print(json.dumps({"day": day, **totals(records)}, ensure_ascii=False))
    return 0
