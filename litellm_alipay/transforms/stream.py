"""B3: streamed chat chunks → LiteLLM ``GenericStreamingChunk`` dicts.

LiteLLM's ``CustomStreamWrapper`` takes one tool call per generic chunk, stops reading after the first
chunk with ``is_finished`` unless a later one carries text, a tool call or usage, and turns each
``provider_specific_fields`` entry into an attribute of the streamed chunk (``chunk.trace_id``). So:
one generic chunk per tool-call delta, the finish flag on the last chunk produced for a B3 chunk, and
``trace_id`` on the first chunk and on the final one (with ``actions`` and the character counts).

One exception: a stream that called tools and finishes on an empty chunk keeps that chunk bare. LiteLLM's
Anthropic adapter (``/v1/messages``) opens a new text block for any chunk with fields after a
``tool_use`` block, so the client would get ``[tool_use, text("")]`` — history a real Anthropic model
refuses. The final fields stay available server-side as ``final_fields``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litellm.types.llms.openai import ChatCompletionToolCallChunk, ChatCompletionUsageBlock
from litellm.types.utils import GenericStreamingChunk

from .chat import finish_reason as map_finish_reason


def _usage_block(usage: Mapping[str, Any]) -> ChatCompletionUsageBlock:
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    return ChatCompletionUsageBlock(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=int(usage.get("total_tokens") or prompt + completion),
    )


def _chunk(text: str = "", index: int = 0, tool_use: ChatCompletionToolCallChunk | None = None,
           ) -> GenericStreamingChunk:
    return GenericStreamingChunk(
        text=text, tool_use=tool_use, is_finished=False, finish_reason="", usage=None, index=index,
    )


class StreamTransformer:
    """One per stream: remembers which tool calls have started (their ids and OpenAI indices), whether
    the trace id was already reported, and whether the stream has finished."""

    def __init__(self) -> None:
        self._calls: dict[tuple[int, Any], tuple[int, str]] = {}  # (choice, B3 key) → (index, id)
        self._next_index: dict[int, int] = {}
        self._trace_sent = False
        self._finish: str | None = None
        self.trace_id: str | None = None
        self.finished = False
        self.final_fields: dict[str, Any] = {}
        self.text: list[str] = []  # the first choice's text, for checking a structured answer at the end

    def chunks(self, chunk: dict) -> list[GenericStreamingChunk]:
        """One B3 chunk → 0..n generic chunks, in order. A role-only delta yields nothing."""
        self.trace_id = self.trace_id or chunk.get("trace_id")
        out: list[GenericStreamingChunk] = []
        for position, choice in enumerate(chunk.get("choices") or []):
            index = choice.get("index", position)
            delta = choice.get("delta") or {}
            text = delta.get("content") or ""
            if text and index == 0:
                self.text.append(text)
            calls = [self._tool_use(index, c, k) for k, c in enumerate(delta.get("tool_calls") or [])]
            if text:
                out.append(_chunk(text, index, calls.pop(0) if calls else None))
            out.extend(_chunk("", index, call) for call in calls)
            if choice.get("finish_reason"):
                self._finish = map_finish_reason(choice["finish_reason"])
        usage = chunk.get("usage")
        if self._finish or usage:
            if not out:
                out.append(_chunk())
            last = out[-1]
            last["is_finished"] = True
            last["finish_reason"] = self._finish or map_finish_reason(None, bool(self._calls))
            last["usage"] = _usage_block(usage) if usage else None
            self.final_fields = self._final_fields(chunk)
            if last["text"] or last["tool_use"] or not self._calls:
                last["provider_specific_fields"] = dict(self.final_fields)
            self.finished = True
        return self._first_trace(out)

    def _first_trace(self, out: list[GenericStreamingChunk]) -> list[GenericStreamingChunk]:
        if out and not self._trace_sent and self.trace_id:
            fields = out[0].get("provider_specific_fields") or {}
            out[0]["provider_specific_fields"] = {"trace_id": self.trace_id, **fields}
            self._trace_sent = True
        return out

    def _final_fields(self, chunk: Mapping[str, Any]) -> dict[str, Any]:
        usage = chunk.get("usage") or {}
        fields: dict[str, Any] = {"trace_id": self.trace_id}
        if chunk.get("actions") is not None:
            fields["actions"] = list(chunk["actions"])
        for key in ("input_chars", "output_chars"):
            if usage.get(key) is not None:
                fields[key] = usage[key]
        return fields

    def _tool_use(self, choice: int, call: Mapping[str, Any], position: int) -> ChatCompletionToolCallChunk:
        """The first delta of a call carries its id and name; later ones only argument text. A call is
        keyed by its B3 ``index`` (else its id, else its position in the delta)."""
        key = next((call[k] for k in ("index", "id") if call.get(k) is not None), position)
        function = call.get("function") or {}
        known = self._calls.get((choice, key))
        if known is None:
            index = self._next_index.get(choice, 0)
            self._next_index[choice] = index + 1
            call_id = call.get("id") or f"call_{self.trace_id or 'alipay'}_{choice}_{index}"
            self._calls[(choice, key)] = (index, call_id)
            return ChatCompletionToolCallChunk(
                id=call_id, type="function", index=index,
                function={"name": function.get("name"), "arguments": function.get("arguments") or ""},
            )
        return ChatCompletionToolCallChunk(
            id=None, type="function", index=known[0],
            function={"name": None, "arguments": function.get("arguments") or ""},
        )
