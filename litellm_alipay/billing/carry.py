"""How a call's cost reaches LiteLLM: hidden params on an answer, the usage block of a stream's last chunk,
and the call's logging details for callbacks. Shared by every backend (gateway, Ant Ling); pure data
shuffling, no I/O: the price itself comes from ``pricing``.
"""

from __future__ import annotations

from typing import Any

from litellm.types.utils import GenericStreamingChunk

from .pricing import Cost, stream_usage


class StreamTally:
    """Holds back a stream's finishing chunks until the stream has ended (its signature verified), then
    puts the call's cost on them.

    Why ``usage["cost"]``: LiteLLM 1.106.2 drops a custom provider's final ``ModelResponseStream`` when it
    has no text (its ``_hidden_params["response_cost"]`` with it), but it carries a usage block's ``cost``
    into the assembled response's ``response_cost`` — what callbacks, spend logs and budgets read. The CNY
    figure and breakdown stay server-side (``record_stream`` below): every client of a proxy would see
    them in the stream otherwise.
    """

    def __init__(self) -> None:
        self._priced: list[dict[str, Any]] = []  # only the B3 chunks with usage or actions
        self._held: list[GenericStreamingChunk] = []

    def release(self, out: list[GenericStreamingChunk], chunk: dict[str, Any]) -> list[GenericStreamingChunk]:
        """The chunks to yield now; from the finishing one on, everything is held."""
        if chunk.get("usage") or chunk.get("actions"):
            self._priced.append(chunk)
        if self._held or any(c.get("is_finished") for c in out):
            self._held.extend(out)
            return []
        return out

    def priced(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return stream_usage(self._priced)

    def finish(self, cost: Cost) -> list[GenericStreamingChunk]:
        held, self._held = self._held, []
        if not held:  # a stream that never said it finished: the cost still needs a carrier
            held = [GenericStreamingChunk(text="", tool_use=None, is_finished=True, finish_reason="stop",
                                          usage=None, index=0)]
        last = held[-1]
        usage: dict[str, Any] = dict(last.get("usage") or {"prompt_tokens": 0, "completion_tokens": 0,
                                                           "total_tokens": 0})
        usage["cost"] = cost.usd
        last["usage"] = usage  # type: ignore[typeddict-item]
        return held


def with_cost(response: Any, cost: Any) -> Any:
    """LiteLLM takes ``response_cost`` from hidden params over any price table: spend logs and
    budgets then see Alipay's own pricing in USD, with the CNY figure and breakdown beside it."""
    hidden = response._hidden_params
    hidden["response_cost"] = cost.usd
    alipay = dict(hidden.get("alipay") or {})
    alipay.update(cost_cny=cost.cny, cost_breakdown=cost.breakdown)
    hidden["alipay"] = alipay
    return response


def record_stream(logging_obj: Any, fields: dict[str, Any], cost: Cost) -> None:
    """A stream's Alipay fields and CNY cost, where callbacks (the ledger) read them: the call's logging
    details, which LiteLLM hands every success callback as ``kwargs`` — never the client's stream."""
    details = getattr(logging_obj, "model_call_details", None)
    if isinstance(details, dict):
        details["alipay"] = {**fields, "cost_cny": cost.cny, "cost_breakdown": cost.breakdown}
