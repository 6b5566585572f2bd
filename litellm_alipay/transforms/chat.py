"""B1: an OpenAI chat request → ``biz_content``; a success node → LiteLLM's ``ModelResponse``.

Where Alipay-only data lands (checked to survive ``litellm.completion``'s post-processing):
``choices[i].message.provider_specific_fields`` = ``{"trace_id", "actions", "input_chars",
"output_chars"}`` (what a proxy client can see) and ``model_response._hidden_params["alipay"]`` =
the same four keys (what callbacks and cost code read).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from litellm.types.utils import (
    ChatCompletionMessageToolCall,
    Choices,
    Function,
    Message,
    ModelResponse,
    Usage,
)

from .messages import convert_messages
from .params import begin_request, chat_params
from .structured import response_schema, with_instruction

FINISH_REASONS = {
    "stop": "stop", "length": "length", "tool_calls": "tool_calls", "content_filter": "content_filter",
    "function_call": "tool_calls", "max_tokens": "length", "sensitive": "content_filter",
}


def chat_biz_content(
    model: str,
    messages: list[dict],
    params: Mapping[str, Any],
    *,
    drop_params: bool = False,
    ignore: Iterable[str] = (),
) -> dict:
    """The B1 ``biz_content`` dict (not yet serialised). ``ignore`` names extra ``params`` keys to skip
    (e.g. the adapter's own settings), on top of ``params.LITELLM_INTERNAL_PARAMS``.

    A ``json_schema`` response format adds the schema's system message (``structured.py``).
    Raises ``litellm.BadRequestError`` for content Alipay cannot carry and
    ``litellm.UnsupportedParamsError`` for unsupported parameters unless ``drop_params``.
    """
    begin_request()
    fields = chat_params(model, params, drop_params=drop_params, ignore=ignore)
    converted = convert_messages(model, messages)
    requested = response_schema(model, params.get("response_format"))
    if requested is not None:  # B1 takes no schema: it travels in the prompt and the answer is checked
        converted = with_instruction(converted, requested)
    return {"model": model, "messages": converted, **fields}


def finish_reason(value: Any, has_tool_calls: bool = False) -> str:
    """B1's four reasons map 1:1; a missing one means ``stop`` (``tool_calls`` if calls came back)."""
    if not value:
        return "tool_calls" if has_tool_calls else "stop"
    return FINISH_REASONS.get(str(value), "stop")


def _tool_call(call: Mapping[str, Any]) -> ChatCompletionMessageToolCall:
    function = call.get("function") or {}
    arguments = function.get("arguments")
    return ChatCompletionMessageToolCall(
        id=call.get("id"),
        type="function",
        function=Function(name=function.get("name"), arguments=arguments if arguments is not None else ""),
    )


def alipay_fields(node: Mapping[str, Any]) -> dict[str, Any]:
    """The provider-specific data of a B1 node: trace id, executed payment actions, character counts
    (B6 bills by characters, so cost code needs them)."""
    usage = node.get("usage") or {}
    return {
        "trace_id": node.get("trace_id"),
        "actions": list(node.get("actions") or []),
        "input_chars": usage.get("input_chars"),
        "output_chars": usage.get("output_chars"),
    }


def _choice(choice: Mapping[str, Any], position: int, extra: dict[str, Any]) -> Choices:
    message = choice.get("message") or {}
    calls = [_tool_call(c) for c in message.get("tool_calls") or []]
    return Choices(
        index=choice.get("index", position),
        finish_reason=finish_reason(choice.get("finish_reason"), bool(calls)),
        message=Message(
            role="assistant",
            content=message.get("content"),
            tool_calls=calls or None,
            provider_specific_fields=dict(extra),
        ),
    )


def chat_model_response(node: dict, model_response: ModelResponse, model: str) -> ModelResponse:
    """Fill ``model_response`` (LiteLLM's pre-made object) from a B1 success node and return it.

    ``model`` is the name the caller asked for; the node's ``model`` wins when present, as other
    providers report the model that actually answered.
    """
    extra = alipay_fields(node)
    if extra["trace_id"]:
        model_response.id = f"chatcmpl-{extra['trace_id']}"
    model_response.created = int(node.get("created") or time.time())
    model_response.model = node.get("model") or model
    model_response.choices = [_choice(c, i, extra) for i, c in enumerate(node.get("choices") or [])]
    usage = node.get("usage") or {}
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    model_response.usage = Usage(  # type: ignore[attr-defined]
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=int(usage.get("total_tokens") or prompt + completion),
    )
    # a fresh dict: never mutate a default shared between instances
    model_response._hidden_params = {**(model_response._hidden_params or {}), "alipay": extra}
    return model_response
