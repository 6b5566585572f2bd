"""Ant Ling's OpenAI-compatible endpoint, emulated (PROTOCOL Part C): ``/ant-ling/v1/…``.

What it reproduces of ``https://api.ant-ling.com/v1`` (``../shared/reference/ANT_LING.md`` §2):

- bearer-key check (401 without a known key), ``GET /models``, ``POST /chat/completions`` answered by the
  emulator's deterministic model (``model.py``), plain and SSE-streamed (``include_usage`` honoured);
- reasoning: Ring models always reason (``reasoning.effort`` high by default, or xhigh); hybrid Ling-3
  models reason unless ``thinking.type`` is ``disabled``; other models never do. The reasoning text is
  ``"Reasoning (<effort>): <last user text>"``, sent as ``message.reasoning_content`` or streamed as
  ``delta.reasoning_content`` word by word before the answer; its tokens are counted in
  ``completion_tokens`` and ``completion_tokens_details.reasoning_tokens``;
- a prefix cache: a first message already seen by this emulator (since the last reset) is reported as
  ``prompt_tokens_details.cached_tokens`` (3 + its tokens);
- the endpoint's refusals: a ``developer`` (or unknown) role → 400 "Invalid Request Messages";
  ``temperature`` outside [0, 1] or ``top_p`` outside (0, 1] → 400; an unknown model → 404; a prompt over
  262,144 tokens → 400 "…longer than the model's context length…";
- faults (``faults.py``, method ``ant-ling.chat``): ``rate_limit`` → 429, ``http_5xx`` → 500 / 503
  "The engine is currently overloaded", ``slow_down`` → 503 "Slow Down", ``system_error`` → 500,
  ``latency``/``stall``, ``drop``, ``truncate``, ``cut_stream`` (no ``[DONE]``), ``stream_error``.

Every accepted or refused body is kept (the last 200, without headers) for tests to assert what was
sent: ``GET /_admin/ant-ling/received``.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from typing import Any

from starlette.requests import Request

from . import model
from .config import FaultRule
from .core import Emulator, dumps
from .openai_compat import to_biz
from .responses import EventStreamResponse, RawResponse, sleep_unless_disconnected

METHOD = "ant-ling.chat"
DEMO_API_KEY = "sk-emulator-ant-ling-demo"  # a public constant of the emulator, not a secret
CONTEXT_TOKENS = 262_144
MODELS = ("Ling-3.0-flash", "Ling-3.0-flash-VL", "Ling-3.0-tiny", "Ling-2.6-1T", "Ling-2.6-flash", "Ring-2.6-1T",
          "Ling-2.5-1T", "Ring-2.5-1T", "Ling-1T", "Ring-1T", "AntAngelMed")
ROLES = frozenset({"system", "user", "assistant", "tool"})
OVERLOADED = "The engine is currently overloaded, please try again later"


def _error(status: int, message: str, kind: str, code: str | None = None) -> RawResponse:
    payload = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return RawResponse(status, dumps(payload).encode())


class Refused(Exception):
    def __init__(self, response: RawResponse) -> None:
        self.response = response


def _invalid(message: str, code: str = "invalid_request") -> Refused:
    return Refused(_error(400, message, "invalid_request_error", code))


def reasoning_effort(model_id: str, body: dict[str, Any]) -> str | None:
    """The effort this request reasons at, or None when the model does not reason for it."""
    if model_id.startswith("Ring-"):
        reasoning = body.get("reasoning")
        effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
        if effort is not None and effort not in ("high", "xhigh"):
            raise _invalid(f"reasoning.effort must be high or xhigh, got {effort!r}")
        return effort or "high"
    if model_id.startswith("Ling-3"):
        thinking = body.get("thinking")
        kind = thinking.get("type") if isinstance(thinking, dict) else None
        if kind not in (None, "enabled", "disabled"):
            raise _invalid(f"thinking.type must be enabled or disabled, got {kind!r}")
        return None if kind == "disabled" else "high"
    return None


class AntLingRoute:
    """The endpoint's handlers over the shared ``Emulator`` (its fault rules, stats and request ordinal)."""

    def __init__(self, emulator: Emulator, api_keys: tuple[str, ...] = (DEMO_API_KEY,)) -> None:
        self.emu = emulator
        self.api_keys = frozenset(api_keys)
        self.received: deque[dict[str, Any]] = deque(maxlen=200)
        self._seen_prefixes: set[str] = set()

    def reset(self) -> None:
        self.received.clear()
        self._seen_prefixes.clear()

    def _authorized(self, request: Request) -> bool:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and key.strip() in self.api_keys

    async def models(self, request: Request) -> RawResponse:
        if not self._authorized(request):
            return _error(401, "Invalid API key", "authentication_error", "invalid_api_key")
        data = [{"id": m, "object": "model", "created": 1753228800, "owned_by": "inclusionAI"} for m in MODELS]
        return RawResponse(200, dumps({"object": "list", "data": data}).encode())

    # -------------------------------------------------------------------------------------- chat
    async def chat(self, request: Request) -> Any:
        emu = self.emu
        emu.state.request_no += 1
        request_no = emu.state.request_no
        emu.state.stats.request("ant-ling", METHOD)
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.received.append(body if isinstance(body, dict) else {"_unparsed": raw.decode("utf-8", "replace")})
        if not self._authorized(request):
            emu.state.stats.reject("ant-ling.unauthorized")
            return _error(401, "Invalid API key", "authentication_error", "invalid_api_key")
        stream = isinstance(body, dict) and body.get("stream") is True
        fault = emu.faults.pick(request_no, METHOD, "ant-ling", stream)
        if fault is not None:
            emu.state.stats.faults[fault.kind] += 1
            early = await self._early_fault(fault, request)
            if early is not None:
                return early
        try:
            if not isinstance(body, dict):
                raise _invalid("the body must be a JSON object")
            answer = self._answer(body)
            if fault is not None and fault.kind == "change_mind":
                _change_mind(answer)
        except Refused as refused:
            emu.state.stats.reject("ant-ling.refused")
            return refused.response
        emu.state.stats.successes += 1
        if stream:
            return self._stream(answer, body, fault)
        kind = fault.kind if fault is not None else None
        delivery = {"truncate": "truncate", "drop_after_actions": "drop"}.get(kind or "")
        return RawResponse(200, dumps(answer).encode(), fault=delivery)

    def _validate(self, body: dict[str, Any]) -> str:
        model_id = body.get("model")
        if model_id not in MODELS:
            raise Refused(_error(404, f"The model `{model_id}` does not exist or you do not have access to it.",
                                 "invalid_request_error", "model_not_found"))
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _invalid("Invalid Request Messages", "invalid_messages")
        for message in messages:
            if not isinstance(message, dict) or message.get("role") not in ROLES:
                raise _invalid("Invalid Request Messages", "invalid_messages")
        temperature = body.get("temperature")
        if temperature is not None and not (isinstance(temperature, int | float) and 0 <= temperature <= 1):
            raise _invalid(f"temperature must be in [0.0, 1.0], got {temperature!r}", "invalid_parameter")
        top_p = body.get("top_p")
        if top_p is not None and not (isinstance(top_p, int | float) and 0 < top_p <= 1):
            raise _invalid(f"top_p must be in (0.0, 1.0], got {top_p!r}", "invalid_parameter")
        return str(model_id)

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        model_id = self._validate(body)
        effort = reasoning_effort(model_id, body)
        biz = to_biz(body)
        try:
            result = model.chat(biz, (), 10**12, regulated=False)
        except model.InvalidRequest as exc:
            raise _invalid(str(exc)) from None
        usage = dict(result.usage)
        if usage["prompt_tokens"] > CONTEXT_TOKENS:
            raise _invalid(f"This request ({usage['prompt_tokens']} tokens) is longer than the model's context "
                           f"length ({CONTEXT_TOKENS} tokens)", "context_length_exceeded")
        message: dict[str, Any] = {"role": "assistant", "content": result.content}
        if result.tool_calls:
            message["tool_calls"] = result.tool_calls
        reasoning_tokens = 0
        if effort is not None:
            last_user = next((m for m in reversed(biz["messages"]) if m.get("role") == "user"), None)
            thought = f"Reasoning ({effort}): " + (model.prompt_text(last_user) if last_user else "")
            message["reasoning_content"] = thought
            reasoning_tokens = model.count_tokens(thought)
        prompt, completion = usage["prompt_tokens"], usage["completion_tokens"] + reasoning_tokens
        first = biz["messages"][0]
        prefix = hashlib.sha256(dumps(first).encode()).hexdigest()
        cached = 3 + model.count_tokens(model.prompt_text(first)) if prefix in self._seen_prefixes else 0
        self._seen_prefixes.add(prefix)
        cid = "chatcmpl-" + self.emu.trace_id()
        return {
            "id": cid, "object": "chat.completion", "created": 1764460800, "model": model_id,
            "choices": [{"index": 0, "message": message, "finish_reason": result.finish_reason}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                      "prompt_tokens_details": {"cached_tokens": min(cached, prompt)},
                      "completion_tokens_details": {"reasoning_tokens": reasoning_tokens}},
        }

    # ------------------------------------------------------------------------------------ faults
    async def _early_fault(self, fault: FaultRule, request: Request) -> RawResponse | None:
        kind = fault.kind
        if kind == "rate_limit":
            return _error(429, "Rate limit reached for requests", "rate_limit_error", "rate_limit_exceeded")
        if kind == "slow_down":
            return _error(503, "Slow Down", "service_unavailable", "slow_down")
        if kind == "system_error" or (kind == "http_5xx" and fault.status != 503):
            status = fault.status if kind == "http_5xx" else 500
            return _error(status, "The server had an error while processing your request", "server_error")
        if kind == "http_5xx":
            return _error(503, OVERLOADED, "service_unavailable", "engine_overloaded")
        if kind == "drop":
            return RawResponse(200, b"", fault="drop")
        if kind in ("latency", "stall") and await sleep_unless_disconnected(request.receive, fault.seconds):
            self.emu.state.stats.abandoned += 1
            return RawResponse(499, b"", fault="drop")
        return None

    # --------------------------------------------------------------------------------- streaming
    @staticmethod
    def chunks(answer: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
        """The answer as OpenAI chunk dicts: role, reasoning words, content words or tool calls, finish,
        then (with ``include_usage``) a usage chunk with no choices."""
        base = {"id": answer["id"], "object": "chat.completion.chunk", "created": answer["created"],
                "model": answer["model"]}
        choice, message = answer["choices"][0], answer["choices"][0]["message"]

        def delta(d: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}

        out = [delta({"role": "assistant", "content": ""})]
        out += [delta({"reasoning_content": w}) for w in model.words(message.get("reasoning_content") or "")]
        if message.get("tool_calls"):
            out.append(delta({"tool_calls": [{"index": i, **c} for i, c in enumerate(message["tool_calls"])]}))
        else:
            out += [delta({"content": w}) for w in model.words(message.get("content") or "")]
        out.append(delta({}, choice["finish_reason"]))
        if include_usage:
            out.append({**base, "choices": [], "usage": answer["usage"]})
        return out

    def _stream(self, answer: dict[str, Any], body: dict[str, Any], fault: FaultRule | None) -> EventStreamResponse:
        include = bool((body.get("stream_options") or {}).get("include_usage"))
        events = [b"data: " + dumps(c).encode() + b"\n\n" for c in self.chunks(answer, include)]
        kind = fault.kind if fault is not None else None
        if kind == "stream_error":
            error = {"error": {"message": OVERLOADED, "type": "service_unavailable", "code": 503}}
            events = events[:2] + [b"data: " + dumps(error).encode() + b"\n\n"]
        if kind != "cut_stream":
            events.append(b"data: [DONE]\n\n")
        return EventStreamResponse(events, fault="truncate" if kind == "truncate" else None)


def _change_mind(answer: dict[str, Any]) -> None:
    """The ``change_mind`` fault: each proposed amount 0.50 lower (never below 0.01)."""
    from decimal import Decimal

    for call in answer["choices"][0]["message"].get("tool_calls") or []:
        args = json.loads(call["function"].get("arguments") or "{}")
        for name in ("refund_amount", "total_amount"):
            if isinstance(args.get(name), str):
                args[name] = str(max(Decimal(args[name]) - Decimal("0.50"), Decimal("0.01")))
        call["function"]["arguments"] = json.dumps(args)
