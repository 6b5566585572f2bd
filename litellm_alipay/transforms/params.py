"""OpenAI-style optional parameters → B1/B2 ``biz_content`` fields.

Whitelist, never wholesale: each parameter B1 knows has a mapper below; every other key is either a
LiteLLM internal (ignored), an OpenAI parameter at its no-op default (ignored: it changes nothing), or
unsupported — then LiteLLM's convention applies: ``UnsupportedParamsError`` naming it, unless
``drop_params`` is true, when it is dropped — and the answer says so: ``dropped_report`` names every
dropped parameter for the provider to put in the response's ``x-litellm-alipay-dropped-params`` header
(a client asking ``n=2`` or ``logprobs`` must be able to tell it got neither). Unknown keys count as
unsupported, so a typo or a gateway setting that leaked into ``optional_params`` is reported instead of
being sent to Alipay.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import Any

from litellm.types.utils import all_litellm_params

from ._errors import bad_request, unsupported

#: Request options of the OpenAI SDK's surface that LiteLLM passes along but does not list among its
#: own parameters (``all_litellm_params``, checked on 1.108.7 and 1.110.x): they shape the HTTP call, not
#: the request.
SDK_REQUEST_OPTIONS = frozenset({
    "timeout", "extra_headers", "extra_query", "extra_body", "stream_options", "base_url", "drop_params",
    "additional_drop_params",
})
#: Keys LiteLLM (or the OpenAI SDK) may leave in ``optional_params`` that are not request parameters:
#: LiteLLM's own list, so its next internal keyword is known here the day it ships.
LITELLM_INTERNAL_PARAMS = frozenset(all_litellm_params) | SDK_REQUEST_OPTIONS

#: OpenAI parameters Alipay has no equivalent for, with the values that are no-ops (accepted silently).
#: ``parallel_tool_calls=True`` is OpenAI's default and what the gateway does anyway (``tool_calls`` is
#: a list); ``False`` cannot be honoured, so it is unsupported.
NO_OP_DEFAULTS: Mapping[str, tuple[Any, ...]] = {
    "n": (1,),
    "logprobs": (False,),
    "top_logprobs": (0,),
    "presence_penalty": (0, 0.0),
    "frequency_penalty": (0, 0.0),
    "logit_bias": ({},),
    "parallel_tool_calls": (True,),
    "modalities": (["text"],),
}

#: The response header naming the parameters a request asked for that ``drop_params`` dropped.
DROPPED_HEADER = "x-litellm-alipay-dropped-params"
#: The parameters dropped so far in this call (a context variable: one per request task, and reset by
#: ``begin_request`` where a request's transform starts, so a Router retry does not inherit them).
_DROPPED: ContextVar[tuple[str, ...]] = ContextVar("litellm_alipay_dropped_params", default=())

_TOOL_CHOICE_STRINGS = frozenset({"auto", "none", "required"})
OUT_REQUEST_NO_MAX = 64


# ------------------------------------------------------------------------------------------ helpers
def _number(model: str, name: str, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad_request(model, f"{name} must be a number, got {value!r}")
    return value


def _positive_int(model: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad_request(model, f"{name} must be a positive integer, got {value!r}")
    return value


def _string(model: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise bad_request(model, f"{name} must be a non-empty string, got {value!r}")
    return value


def user_id(model: str, params: Mapping[str, Any]) -> dict[str, str]:
    """``user_id`` wins over OpenAI's ``user``: it is the explicit Alipay name for the same thing."""
    for name in ("user_id", "user"):
        if params.get(name) is not None:
            return {"user_id": _string(model, name, params[name])}
    return {}


def triage(
    model: str,
    params: Mapping[str, Any],
    supported: Iterable[str],
    *,
    drop_params: bool,
    ignore: Iterable[str] = (),
    no_op: Mapping[str, tuple[Any, ...]] = NO_OP_DEFAULTS,
) -> None:
    """Raise ``UnsupportedParamsError`` for every key that is neither supported, internal nor a no-op.

    Membership is tested against each collection in turn: building their union (LiteLLM's internal
    parameters are some hundreds of names) cost more than the rest of the request's transform."""
    supported = supported if isinstance(supported, (set, frozenset, dict)) else set(supported)
    ignore = ignore if isinstance(ignore, (set, frozenset, dict)) else set(ignore)
    bad = [
        name for name, value in params.items()
        if value is not None and name not in LITELLM_INTERNAL_PARAMS and name not in supported
        and name not in ignore and value not in no_op.get(name, ())
    ]
    if bad and not drop_params:
        raise unsupported(model, bad)
    if bad:
        dropped(*bad)


def begin_request() -> None:
    """A request's transform starts: nothing dropped yet."""
    _DROPPED.set(())


def dropped(*names: str) -> None:
    """Record parameters this call asked for and will not get (``drop_params``)."""
    _DROPPED.set(tuple(dict.fromkeys((*_DROPPED.get(), *names))))


def dropped_report(response: Any) -> Any:
    """Name the call's dropped parameters in ``response``'s headers (LiteLLM's proxy sends a response's
    ``_hidden_params["additional_headers"]`` to the client); the response unchanged when none were."""
    names = _DROPPED.get()
    hidden = getattr(response, "_hidden_params", None)
    if names and isinstance(hidden, dict):
        headers = dict(hidden.get("additional_headers") or {})
        headers[DROPPED_HEADER] = ",".join(names)
        hidden["additional_headers"] = headers
    return response


# --------------------------------------------------------------------------------------------- chat
def _stop(model: str, value: Any) -> dict[str, Any]:
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise bad_request(model, f"stop must be a string or a list of strings, got {value!r}")
    return {"stop": stops} if stops else {}


def _tools(model: str, value: Any) -> dict[str, Any]:
    """Only function tools exist in B1; keep the three fields it defines (``strict`` is dropped)."""
    if not isinstance(value, list):
        raise bad_request(model, f"tools must be a list, got {type(value).__name__}")
    tools = []
    for i, tool in enumerate(value):
        if not isinstance(tool, Mapping) or tool.get("type", "function") != "function":
            kind = tool.get("type") if isinstance(tool, Mapping) else type(tool).__name__
            raise bad_request(model, f"tools[{i}].type {kind!r} is not supported by Alipay")
        function = tool.get("function")
        if not isinstance(function, Mapping):
            raise bad_request(model, f"tools[{i}].function is missing")
        spec: dict[str, Any] = {"name": _string(model, f"tools[{i}].function.name", function.get("name"))}
        for key in ("description", "parameters"):
            if function.get(key) is not None:
                spec[key] = function[key]
        tools.append({"type": "function", "function": spec})
    return {"tools": tools} if tools else {}


def _tool_choice(model: str, value: Any) -> dict[str, Any]:
    if isinstance(value, str) and value in _TOOL_CHOICE_STRINGS:
        return {"tool_choice": value}
    if isinstance(value, Mapping) and value.get("type") == "function":
        function = value.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        name = _string(model, "tool_choice.function.name", name)
        return {"tool_choice": {"type": "function", "function": {"name": name}}}
    raise bad_request(
        model,
        f"tool_choice {value!r} is not supported by Alipay (auto, none, required, or "
        '{"type": "function", "function": {"name": ...}})',
    )


def _response_format(model: str, value: Any) -> dict[str, Any]:
    """B1 knows only ``json_object``; a ``json_schema`` request is sent as ``json_object`` with its schema
    in the prompt, and the answer is validated against it (``structured.py``)."""
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "text":
        return {}
    if kind in ("json_object", "json_schema"):
        return {"response_format": {"type": "json_object"}}
    raise bad_request(model, f"response_format.type {kind!r} is not supported by Alipay")


def _out_request_no(model: str, value: Any) -> dict[str, Any]:
    value = _string(model, "out_request_no", value)
    if len(value) > OUT_REQUEST_NO_MAX:
        raise bad_request(model, f"out_request_no is longer than {OUT_REQUEST_NO_MAX} characters")
    return {"out_request_no": value}


def _allowed_actions(model: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, list) or not all(isinstance(a, str) and a for a in value):
        raise bad_request(model, f"allowed_actions must be a list of strings, got {value!r}")
    return {"allowed_actions": list(value)}


_Mapper = Callable[[str, Any], dict[str, Any]]

CHAT_MAPPERS: Mapping[str, _Mapper] = {
    "temperature": lambda m, v: {"temperature": _number(m, "temperature", v)},
    "top_p": lambda m, v: {"top_p": _number(m, "top_p", v)},
    "max_tokens": lambda m, v: {"max_tokens": _positive_int(m, "max_tokens", v)},
    # the newer OpenAI name; mapped after max_tokens, so it wins when both are given
    "max_completion_tokens": lambda m, v: {"max_tokens": _positive_int(m, "max_completion_tokens", v)},
    "stop": _stop,
    "tools": _tools,
    "tool_choice": _tool_choice,
    "response_format": _response_format,
    "stream": lambda m, v: {"stream": True} if v else {},
    "out_request_no": _out_request_no,
    "allowed_actions": _allowed_actions,
}

_CHAT_SUPPORTED = frozenset([*CHAT_MAPPERS, "user", "user_id"])


def chat_params(
    model: str, params: Mapping[str, Any], *, drop_params: bool = False, ignore: Iterable[str] = ()
) -> dict[str, Any]:
    """The optional B1 fields for ``params``; ``None`` values count as absent."""
    triage(model, params, _CHAT_SUPPORTED, drop_params=drop_params, ignore=ignore)
    fields: dict[str, Any] = {}
    for name, mapper in CHAT_MAPPERS.items():
        if params.get(name) is not None:
            fields.update(mapper(model, params[name]))
    fields.update(user_id(model, params))
    return fields


# ---------------------------------------------------------------------------------------- embedding
_EMBED_SUPPORTED = frozenset(["dimensions", "user", "user_id"])

def embed_params(
    model: str, params: Mapping[str, Any], *, drop_params: bool = False, ignore: Iterable[str] = ()
) -> dict[str, Any]:
    """The optional B2 fields. ``encoding_format="float"`` is what B2 returns anyway and the OpenAI SDK
    always sends it, so it is accepted and dropped; ``base64`` is unsupported."""
    triage(
        model, params, _EMBED_SUPPORTED, drop_params=drop_params, ignore=ignore,
        no_op={"encoding_format": ("float",)},
    )
    fields: dict[str, Any] = {}
    if params.get("dimensions") is not None:
        fields["dimensions"] = _positive_int(model, "dimensions", params["dimensions"])
    fields.update(user_id(model, params))
    return fields
