"""A cost ledger: one JSON line per successful call with what LiteLLM recorded as its cost.

Why: LiteLLM's spend log keeps USD only and needs a database; Alipay bills in CNY. The ledger is a
success callback that appends ``{"call_id", "model_group", "model", "stream", "response_cost" (USD, as
LiteLLM recorded it), "cost_cny", "cost_breakdown"}`` to the file named by ``ALIPAY_COST_LEDGER`` —
the figure spend logs and budgets use, beside the contract's own. It also makes a streamed call's cost
observable: the proxy sends ``x-litellm-response-cost`` before a stream's body, when no cost exists yet.

Proxy config: ``litellm_settings: {callbacks: [litellm_alipay.billing.ledger.cost_ledger]}``. Without
``ALIPAY_COST_LEDGER`` it writes nothing.

Several proxy workers append to one file: each line goes out as a single ``write`` on a descriptor
opened with ``O_APPEND``, so lines from different processes never interleave. On the async path the
write runs in a worker thread, never on the event loop (a slow disk must not stall every request).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

logger = logging.getLogger("litellm_alipay")
#: The cost ledger's file (process-wide, not per deployment).
COST_LEDGER_ENV = "ALIPAY_COST_LEDGER"


def append_line(path: str, line: bytes) -> None:
    """Append one whole line to ``path`` with one ``O_APPEND`` write (atomic among appending processes)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        view = memoryview(line)
        while view:  # a regular file takes the whole line at once; the loop only guards a short write
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _alipay_fields(kwargs: Mapping[str, Any], response: Any) -> Mapping[str, Any]:
    """CNY figure and breakdown: in ``_hidden_params["alipay"]`` for chat and embeddings, and in the
    call's logging details (``kwargs["alipay"]``) for a stream, whose chunks never carry them."""
    if isinstance(kwargs.get("alipay"), Mapping) and "cost_cny" in kwargs["alipay"]:
        return kwargs["alipay"]
    hidden = getattr(response, "_hidden_params", None) or {}
    alipay = hidden.get("alipay")
    return alipay if isinstance(alipay, Mapping) else {}


class CostLedger(CustomLogger):
    """Appends one line per call; each call once, though LiteLLM may report it on both its sync and
    async paths."""

    def __init__(self, path: str | None = None) -> None:
        super().__init__()
        self._path = path
        self._lock = threading.Lock()
        self._recent: deque[str] = deque(maxlen=4096)

    @property
    def path(self) -> str | None:
        return self._path or os.environ.get(COST_LEDGER_ENV) or None

    def entry(self, kwargs: Mapping[str, Any], response: Any) -> dict[str, Any]:
        params = kwargs.get("litellm_params") or {}
        metadata = params.get("metadata") or {}
        fields = _alipay_fields(kwargs, response)
        return {
            "call_id": kwargs.get("litellm_call_id"),
            "model_group": metadata.get("model_group") or kwargs.get("model_group"),
            "model": kwargs.get("model"),
            "stream": bool(kwargs.get("stream")),
            "response_cost": kwargs.get("response_cost"),
            "cost_cny": fields.get("cost_cny"),
            "cost_breakdown": fields.get("cost_breakdown"),
        }

    def _line(self, kwargs: Mapping[str, Any], response: Any) -> bytes | None:
        """The encoded line for a call not recorded yet, else None."""
        line = self.entry(kwargs, response)
        with self._lock:
            if line["call_id"] is not None:
                if line["call_id"] in self._recent:
                    return None
                self._recent.append(line["call_id"])
        return (json.dumps(line, default=str) + "\n").encode("utf-8")

    def _write(self, path: str, line: bytes) -> None:
        try:
            append_line(path, line)
        except OSError as exc:  # bookkeeping never fails a call
            logger.warning("cost ledger: cannot append to %s: %s", path, exc.strerror)

    def record(self, kwargs: Mapping[str, Any], response: Any) -> None:
        path = self.path
        line = self._line(kwargs, response) if path else None
        if path and line is not None:
            self._write(path, line)

    async def arecord(self, kwargs: Mapping[str, Any], response: Any) -> None:
        """``record`` with the file write in a worker thread."""
        path = self.path
        line = self._line(kwargs, response) if path else None
        if path and line is not None:
            await asyncio.to_thread(self._write, path, line)

    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self.record(kwargs, response_obj)

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        await self.arecord(kwargs, response_obj)


cost_ledger = CostLedger()
