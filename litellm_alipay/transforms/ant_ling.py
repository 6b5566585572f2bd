"""OpenAI/LiteLLM shapes ⇄ the Ant Ling Open Platform's chat endpoint (PROTOCOL Part C). Pure: no I/O.

The endpoint's quirks are data (``QUIRKS``), in the spirit of LiteLLM's JSON-configured OpenAI-compatible
providers (``llms/openai_like/providers.json``: ``param_mappings``, ``constraints``): the functions below
only apply them. What they encode (``../shared/reference/ANT_LING.md`` §2, §5):

- ``developer`` messages are refused ("Invalid Request Messages"): sent as ``system``;
- ``max_completion_tokens`` is sent as ``max_tokens``; ``store`` is never sent;
- ``temperature`` lives in [0, 1] and ``top_p`` in (0, 1]: larger values are clamped, as LiteLLM clamps
  for its JSON-configured providers (``constraints.temperature_max``);
- reasoning: Ring models take ``reasoning: {"effort": "high"|"xhigh"}`` (no "off": ``none`` omits it);
  hybrid Ling-3 models take ``thinking: {"type": "enabled"|"disabled"}``;
- ``json_schema``: no schema parameter is documented, so the gateway's way is taken — the schema in a system
  message, ``json_object`` on the wire, the answer validated (``structured.py``).

Answers are OpenAI's shape with ``reasoning_content`` beside ``content``; LiteLLM's own converter builds
the ``ModelResponse`` (reasoning, cached and reasoning token details included), and streamed deltas become
LiteLLM stream chunks with ``delta.reasoning_content``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from litellm.types.utils import Delta, GenericStreamingChunk, ModelResponse, ModelResponseStream, StreamingChoices

from ..catalogue import ModelSpec
from ._errors import bad_request
from .params import NO_OP_DEFAULTS, begin_request, triage
from .stream import StreamTransformer
from .structured import response_schema, with_instruction

QUIRKS: Mapping[str, Any] = {
    "param_mappings": {"max_completion_tokens": "max_tokens"},
    "role_mappings": {"developer": "system"},
    "constraints": {"temperature_min": 0.0, "temperature_max": 1.0, "top_p_max": 1.0},
    #: OpenAI parameters the endpoint rejects or ignores, never sent (whatever ``drop_params`` says)
    "never_send": ("store", "user", "user_id"),
    #: sent as given (after the mappings above)
    "pass_through": ("temperature", "top_p", "max_tokens", "stop", "tools", "tool_choice",
                     "parallel_tool_calls", "enable_search", "search_options", "seed"),
    "message_keys": ("role", "content", "name", "tool_calls", "tool_call_id"),
}

#: LiteLLM's ``reasoning_effort`` values → Ring's two levels (None: leave the server default).
RING_EFFORT: Mapping[str, str | None] = {
    "none": None, "minimal": "high", "low": "high", "medium": "high", "high": "high", "xhigh": "xhigh",
    "max": "xhigh",
}
_REASONING_PARAMS = ("reasoning_effort", "thinking", "reasoning")


# --------------------------------------------------------------------------------------- request
def _messages(model: str, messages: list[Any]) -> list[dict[str, Any]]:
    roles, keys = QUIRKS["role_mappings"], QUIRKS["message_keys"]
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or not message.get("role"):
            raise bad_request(model, f"messages[{i}] must be an object with a role")
        sent = {k: message[k] for k in keys if message.get(k) is not None}
        sent["role"] = roles.get(sent["role"], sent["role"])
        if sent["role"] == "assistant" and "content" not in sent:
            sent["content"] = None if sent.get("tool_calls") else ""
        out.append(sent)
    return out


def _clamp(model: str, name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_request(model, f"{name} must be a number, got {value!r}")
    return min(max(value, low), high)


def _reasoning(model: str, spec: ModelSpec, params: Mapping[str, Any], drop_params: bool) -> dict[str, Any]:
    """``reasoning_effort`` (or Anthropic-style ``thinking``, or Ring's own ``reasoning``) → the wire."""
    effort = params.get("reasoning_effort")
    thinking = params.get("thinking")
    if isinstance(thinking, Mapping) and effort is None:
        effort = "none" if thinking.get("type") == "disabled" else "high" if thinking.get("type") else None
    if effort is not None and (not isinstance(effort, str) or effort not in RING_EFFORT):
        raise bad_request(model, f"reasoning_effort {effort!r} is not one of {', '.join(RING_EFFORT)}")
    if spec.reasoning == "effort":
        given = params.get("reasoning")
        if isinstance(given, Mapping) and given.get("effort") in ("high", "xhigh"):
            return {"reasoning": {"effort": given["effort"]}}
        level = RING_EFFORT.get(effort) if effort is not None else None
        return {"reasoning": {"effort": level}} if level else {}
    if spec.reasoning == "toggle":
        if effort is None:
            return {}
        return {"thinking": {"type": "disabled" if effort == "none" else "enabled"}}
    if effort not in (None, "none"):  # an instant model: reasoning cannot be asked for
        triage(model, {"reasoning_effort": effort}, (), drop_params=drop_params)
    return {}


def _response_format(model: str, spec: ModelSpec, value: Any, drop_params: bool) -> dict[str, Any]:
    """The wire's ``response_format``. A ``json_schema`` goes as ``json_object``: the endpoint documents no
    schema parameter (ANT_LING.md §2) and answered plain text to one, so the schema travels in the prompt
    (``with_instruction``) and the answer is validated on its way back (``structured.check_structured``),
    as on the gateway."""
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "text" or value is None:
        return {}
    if not spec.response_schema:
        triage(model, {"response_format": value}, (), drop_params=drop_params)
        return {}
    if kind not in ("json_object", "json_schema"):
        raise bad_request(model, f"response_format.type {kind!r} is not supported (json_object, json_schema)")
    return {"response_format": {"type": "json_object"}}


def chat_request(model: str, spec: ModelSpec, messages: list[Any], params: Mapping[str, Any], *,
                 drop_params: bool = False, stream: bool = False) -> dict[str, Any]:
    """The JSON body for ``POST /chat/completions``. Raises ``BadRequestError`` for malformed input and
    ``UnsupportedParamsError`` for a parameter the endpoint lacks (unless ``drop_params``)."""
    begin_request()
    renamed = dict(params)
    for old, new in QUIRKS["param_mappings"].items():
        if renamed.get(old) is not None:
            renamed[new] = renamed.pop(old)
    supported = (*QUIRKS["pass_through"], "response_format", "stream", *_REASONING_PARAMS)
    triage(model, renamed, supported, drop_params=drop_params, ignore=QUIRKS["never_send"], no_op=NO_OP_DEFAULTS)
    converted = _messages(model, messages)
    requested = response_schema(model, renamed.get("response_format")) if spec.response_schema else None
    if requested is not None:  # the schema travels in the prompt; the answer is checked against it
        converted = with_instruction(converted, requested)
    body: dict[str, Any] = {"model": model, "messages": converted}
    limits = QUIRKS["constraints"]
    for name in QUIRKS["pass_through"]:
        value = renamed.get(name)
        if value is None:
            continue
        if name == "temperature":
            value = _clamp(model, name, value, limits["temperature_min"], limits["temperature_max"])
        elif name == "top_p":
            value = _clamp(model, name, value, 0.0, limits["top_p_max"])
        elif name == "stop" and isinstance(value, str):
            value = [value]
        body[name] = value
    body.update(_response_format(model, spec, renamed.get("response_format"), drop_params))
    body.update(_reasoning(model, spec, renamed, drop_params))
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


# -------------------------------------------------------------------------------------- response
def _reasoning_field(message: dict[str, Any]) -> None:
    """Some OpenAI-compatible hosts say ``reasoning``; LiteLLM reads ``reasoning_content``."""
    if message.get("reasoning_content") is None and isinstance(message.get("reasoning"), str):
        message["reasoning_content"] = message.pop("reasoning")


def model_response(body: dict[str, Any], response: ModelResponse) -> ModelResponse:
    """Fill LiteLLM's pre-made ``ModelResponse`` from a chat completion body (LiteLLM's own converter)."""
    from litellm.litellm_core_utils.llm_response_utils.convert_dict_to_response import (
        convert_to_model_response_object,
    )

    for choice in body.get("choices") or []:
        if isinstance(choice, dict) and isinstance(choice.get("message"), dict):
            _reasoning_field(choice["message"])
    return convert_to_model_response_object(response_object=body, model_response_object=response)


def usage_block(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Usage as ``litellm.Usage`` takes it, cached and reasoning token details kept when reported."""
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                           "total_tokens": int(usage.get("total_tokens") or prompt + completion)}
    for key in ("prompt_tokens_details", "completion_tokens_details"):
        if isinstance(usage.get(key), Mapping):
            out[key] = dict(usage[key])
    return out


class AntLingStream(StreamTransformer):
    """Ant Ling SSE chunks → LiteLLM stream chunks. Text, tool calls, finish and usage go the way of the
    gateway's stream (``StreamTransformer``); a reasoning delta becomes a ``ModelResponseStream`` whose
    ``delta.reasoning_content`` LiteLLM passes on unchanged (a generic chunk has no place for it)."""

    def __init__(self, model: str) -> None:
        super().__init__()
        self.model = model
        self.usage: dict[str, Any] | None = None

    def reasoning_chunks(self, chunk: Mapping[str, Any]) -> list[ModelResponseStream]:
        out = []
        for position, choice in enumerate(chunk.get("choices") or []):
            delta = choice.get("delta") or {}
            text = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(text, str) and text:
                out.append(ModelResponseStream(
                    id=chunk.get("id"), model=self.model,
                    choices=[StreamingChoices(index=choice.get("index", position),
                                              delta=Delta(role="assistant", reasoning_content=text))],
                ))
        return out

    def all_chunks(self, chunk: dict[str, Any]) -> list[GenericStreamingChunk | ModelResponseStream]:
        """One SSE chunk → reasoning chunks first, then the generic ones (with the full usage block)."""
        chunk.setdefault("trace_id", chunk.get("id"))
        out: list[Any] = self.reasoning_chunks(chunk)
        generic = self.chunks(chunk)
        usage = chunk.get("usage")
        if isinstance(usage, Mapping):
            self.usage = usage_block(usage)
            for item in generic:
                if item.get("usage") is not None:
                    item["usage"] = dict(self.usage)  # type: ignore[typeddict-item]
        out.extend(generic)
        return out


def stream_event(data: str, model: str) -> dict[str, Any] | None:
    """One SSE ``data`` payload → the chunk dict; None at ``[DONE]``. An ``error`` payload mid-stream
    raises the LiteLLM exception for its status (LiteLLM wraps it for the Router)."""
    if data.strip() == "[DONE]":
        return None
    try:
        chunk = json.loads(data)
    except ValueError:
        raise bad_request(model, "Ant Ling sent a stream event that is not JSON") from None
    if not isinstance(chunk, dict):
        raise bad_request(model, "Ant Ling sent a stream event that is not a JSON object")
    if isinstance(chunk.get("error"), Mapping):
        error = chunk["error"]
        status = error.get("code") if isinstance(error.get("code"), int) else 500
        raise error_for_status(status, json.dumps({"error": error}).encode(), model)
    return chunk


def token_counts(usage: Any) -> tuple[int, int, int]:
    """``(prompt, completion, cached prompt)`` tokens from a usage mapping or a ``litellm.Usage``."""
    def get(obj: Any, key: str) -> Any:
        return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)

    details = get(usage, "prompt_tokens_details") or {}
    cached = int(get(details, "cached_tokens") or 0)
    prompt = int(get(usage, "prompt_tokens") or 0)
    return prompt, int(get(usage, "completion_tokens") or 0), min(cached, prompt)


# ---------------------------------------------------------------------------------------- errors
#: The endpoint's statuses (ANT_LING.md §2 "Errors and limits") → the LiteLLM class the Router acts on.
STATUS_ERRORS: Mapping[int, str] = {
    400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError", 404: "NotFoundError",
    408: "Timeout", 413: "BadRequestError", 422: "BadRequestError", 429: "RateLimitError",
    500: "InternalServerError", 502: "ServiceUnavailableError", 503: "ServiceUnavailableError",
    504: "ServiceUnavailableError",
}
SLOW_DOWN = "slow down"
_CONTEXT_MARKERS = ("context length", "context_length", "maximum context", "too long")


def _error_detail(content: bytes) -> tuple[str, str | None]:
    text = content.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return text[:500] or "no detail", None
    error = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(error, Mapping):
        code = error.get("code") or error.get("type")
        return str(error.get("message") or text[:500]), str(code) if code is not None else None
    if isinstance(doc, dict) and doc.get("message"):
        return str(doc["message"]), str(doc.get("code")) if doc.get("code") is not None else None
    return text[:500], None


def error_for_status(status: int, content: bytes, model: str) -> Exception:
    """The LiteLLM exception for an Ant Ling error answer, with ``alipay_code`` (the status),
    ``sub_code`` (the endpoint's code) and ``slow_down`` (a 503 "Slow Down") attributes."""
    import httpx
    import litellm

    message, code = _error_detail(content)
    lowered = message.lower()
    name = STATUS_ERRORS.get(status, "ServiceUnavailableError" if status >= 500 else "BadRequestError")
    if status == 400 and any(marker in lowered for marker in _CONTEXT_MARKERS):
        name = "ContextWindowExceededError"
    kwargs: dict[str, Any] = {"message": f"Ant Ling {status}: {message}", "model": model, "llm_provider": "alipay"}
    if name == "PermissionDeniedError":
        kwargs["response"] = httpx.Response(403, request=httpx.Request("POST", "https://api.ant-ling.com"))
    exc = getattr(litellm, name)(**kwargs)
    exc.alipay_code = str(status)  # type: ignore[attr-defined]
    exc.sub_code = code  # type: ignore[attr-defined]
    exc.trace_id = None  # type: ignore[attr-defined]
    exc.slow_down = status == 503 and SLOW_DOWN in lowered  # type: ignore[attr-defined]
    return exc
