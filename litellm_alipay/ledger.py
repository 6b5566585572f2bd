"""A cost ledger: one JSON line per successful call with what LiteLLM recorded as its cost.

Why: LiteLLM's spend log keeps USD only and needs a database; Alipay bills in CNY. The ledger is a
success callback that appends ``{"call_id", "model_group", "model", "stream", "response_cost" (USD, as
LiteLLM recorded it), "cost_cny", "cost_breakdown"}`` to the file named by ``ALIPAY_COST_LEDGER`` —
the figure spend logs and budgets use, beside the contract's own. It also makes a streamed call's cost
observable: the proxy sends ``x-litellm-response-cost`` before a stream's body, when no cost exists yet.

Proxy config: ``litellm_settings: {callbacks: [litellm_alipay.ledger.cost_ledger]}``. Without
``ALIPAY_COST_LEDGER`` it writes nothing.
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from .settings import COST_LEDGER_ENV


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

    def record(self, kwargs: Mapping[str, Any], response: Any) -> None:
        path = self.path
        if not path:
            return
        line = self.entry(kwargs, response)
        with self._lock:
            if line["call_id"] is not None:
                if line["call_id"] in self._recent:
                    return
                self._recent.append(line["call_id"])
            with open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps(line, default=str) + "\n")

    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self.record(kwargs, response_obj)

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        self.record(kwargs, response_obj)


cost_ledger = CostLedger()
