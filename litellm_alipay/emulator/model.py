"""The emulator's deterministic model: pure functions, so client tests can assert exact output.

Nothing here is random or time-dependent; the same request always yields the same answer.

Definitions used below: the *prompt text* of a message is its string content, or its text parts joined
with a single space; the *last user text* is the prompt text of the last ``user`` message.

Answer text (``choices[0].message.content``), in priority order:

1. Last message is a ``tool`` message: ``"Tool result: <its prompt text>"``.
2. Otherwise ``"You said: <last user text>"`` followed, for each media part of the last user
   message in order, by one space and an acknowledgement (n counts parts of that kind from 1):
   ``[image n: <image_url>]``, ``[image n: <mime_type>, <decoded byte count> bytes]``,
   ``[audio n: <format>, <decoded byte count> bytes]``, ``[video n: <video_url>]``.
3. Then, when B5 actions ran, one space and ``"Actions: "`` + ``"; ".join("<ACTION> <STATUS>")``.
4. ``response_format {"type": "json_object"}`` wraps it: ``json.dumps({"answer": text})`` — unless a
   system message carries a JSON Schema (``schema_prompt.instruction``, how the provider sends
   ``json_schema`` requests): then the answer is the schema's instance built by ``schema_instance``
   (below, "JSON Schema answers").
5. ``stop``: the text is cut before the first occurrence of any stop string (finish_reason stop).
6. ``max_tokens``: the text is cut to its first ``max_tokens`` whitespace-separated words (joined by
   one space) when it has more, and finish_reason is ``length``.

Tool calls: when ``tools`` are offered, ``tool_choice`` is not ``"none"`` and the last message is a
user message, the model calls the tool named by ``tool_choice`` (object form), else the first offered
function whose name occurs in the last user text, else (``tool_choice == "required"``) the first
tool. Arguments: every ``key=value`` pair in the last user text (value = a run of non-space
characters) whose key is a property of the function's ``parameters``; values are cast for
``integer``/``number``/``boolean`` properties. Call id: ``"call_" + sha1(name + arguments)[:20]``.
Content is ``null`` and finish_reason ``tool_calls``. A last user text of several ``;``-separated
clauses that each name the tool makes one call per clause, in order (a model that splits one request
into several calls).

JSON Schema answers (``schema_instance``): an object has every property of ``properties`` (required or
not); a property's value is the ``key=value`` pair of the last user text with its name, cast as for
tool arguments (a value that does not cast stays a string, so ``age=abc`` for an integer property
gives an answer that does *not* conform — how tests reach the provider's validation error);
otherwise a string is the answer text above (``"You said: …"``), an integer ``0``, a number ``0.0``,
a boolean ``false``. ``$ref`` (``#/$defs/…``), ``const``, the first ``enum`` value, the first non-null
option of ``anyOf``/``oneOf``/``allOf`` and nullable types are followed; an array has ``minItems``
(at least one) items.

Compliance (``40004 AI.COMPLIANCE_REJECTED``): any user message's prompt text, lower-cased, contains
``income`` and (``forecast`` or ``predict``), or contains ``收入`` and ``预测``.
Context (``40004 AI.CONTEXT_LENGTH_EXCEEDED``): ``usage.input_chars`` above ``max_context_chars``
(default 32,000). Unknown model: ``40004 AI.MODEL_NOT_FOUND``.

Payment actions (B5), only for action names listed in ``allowed_actions``, from the last user text
(case-insensitive); an amount is ``\\d+(\\.\\d{1,2})?`` formatted with two decimals:

- ``refund <amount>`` (``CNY``/``¥`` may precede the amount) or ``退款<amount>`` → ``REFUND``.
- ``freeze`` (optionally ``freeze account``, optionally followed by an amount) or ``冻结`` →
  ``FREEZE_ACCOUNT``; amount ``0.00`` when none is given.
- If the text also contains ``invalid payer``, every action is ``FAILED`` with
  ``error_code PAYER_ACCOUNT_INVALID`` and ``trade_no`` null; otherwise ``SUCCESS``.
An executed action carries ``fee`` = 0.6% of the amount (two decimals, half up).

Usage: ``count_tokens(text)`` = CJK characters + ceil(other non-space characters / 4). Chat
``prompt_tokens`` = sum over messages of (3 + tokens of its prompt text + 85 per image part, 100 per
audio part, 200 per video part); ``completion_tokens`` = tokens of the content (or of the tool-call
names + arguments); ``input_chars`` = characters of all prompt texts; ``output_chars`` = characters
of the content (or of the tool-call arguments).

Embeddings: each vector is derived from ``sha256(text)`` (blocks ``sha256(text + counter)`` read as
signed 32-bit integers), truncated to ``dimensions`` (default 256) and scaled to unit L2 norm. The
same text always gives the same vector; ``prompt_tokens`` = sum of ``count_tokens``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ..wire.schema_prompt import schema_in_messages

ROLES = frozenset({"system", "user", "assistant", "tool"})
FEE_RATE = Decimal("0.006")
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
_REFUND = re.compile(r"(?:\brefund\s+(?:cny\s*|¥\s*)?|退款\s*)(\d+(?:\.\d{1,2})?)", re.I)
_FREEZE = re.compile(r"(?:\bfreeze\b(?:\s+account)?|冻结)(?:\s*(?:cny\s*|¥\s*)?(\d+(?:\.\d{1,2})?))?", re.I)
_KV = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)")
_WORDS = re.compile(r"\S+\s*|\s+")


class InvalidRequest(ValueError):
    """``biz_content`` breaks B1/B2: answered ``40002 AI.INVALID_REQUEST`` with this message."""


@dataclass(frozen=True)
class ModelError(Exception):
    """A business refusal (B4): ``code``/``sub_code``/``sub_msg`` of the response node."""

    sub_code: str
    sub_msg: str
    code: str = "40004"


@dataclass(frozen=True)
class ActionIntent:
    """A payment action the model decided to execute; the gateway executes it (at most once)."""

    action: str
    amount: str
    fail_code: str | None = None


@dataclass
class ChatResult:
    content: str | None
    tool_calls: list[dict[str, Any]] | None
    finish_reason: str
    usage: dict[str, int]
    intents: list[ActionIntent] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ helpers
def words(text: str) -> list[str]:
    """The pieces a streamed answer is sent in: each word with its trailing space ([""] when empty)."""
    return _WORDS.findall(text) or [""]


def count_tokens(text: str) -> int:
    """A realistic-looking, deterministic token count (see module docstring)."""
    if not text:
        return 0
    cjk = len(_CJK.findall(text))
    other = sum(1 for c in text if not c.isspace()) - cjk
    return cjk + math.ceil(other / 4)


def _b64_len(data: Any) -> int:
    if not isinstance(data, str):
        return 0
    try:
        return len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        return 0


def _parts(content: Any) -> list[Mapping[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if content is None:
        return []
    return list(content)


def prompt_text(message: Mapping[str, Any]) -> str:
    return " ".join(
        str(p.get("text", "")) for p in _parts(message.get("content")) if p.get("type") == "text"
    )


def _model_of(biz: Any) -> str:
    """The ``model`` of a ``biz_content`` object, else ``InvalidRequest``."""
    if not isinstance(biz, Mapping):
        raise InvalidRequest("biz_content must be a JSON object")
    model = biz.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model is required")
    return model


def validate_chat(biz: Any) -> tuple[str, list[Mapping[str, Any]]]:
    """``(model, messages)`` of a well-formed B1 request, else ``InvalidRequest``."""
    model = _model_of(biz)
    messages = biz.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages must be a non-empty array")
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping) or msg.get("role") not in ROLES:
            raise InvalidRequest(f"messages[{i}].role must be one of system, user, assistant, tool")
        content = msg.get("content")
        if content is None and msg.get("role") == "assistant" and msg.get("tool_calls"):
            continue
        if isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, Mapping) or part.get("type") not in (
                    "text", "image", "audio", "video"
                ):
                    raise InvalidRequest(f"messages[{i}].content[{j}].type is not a known part type")
        elif not isinstance(content, str):
            raise InvalidRequest(f"messages[{i}].content must be a string or an array of parts")
    for name in ("tools", "stop", "allowed_actions"):
        if biz.get(name) is not None and not isinstance(biz.get(name), list):
            raise InvalidRequest(f"{name} must be an array")
    max_tokens = biz.get("max_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise InvalidRequest("max_tokens must be a positive integer")
    out_request_no = biz.get("out_request_no")
    if out_request_no is not None and (not isinstance(out_request_no, str) or len(out_request_no) > 64):
        raise InvalidRequest("out_request_no must be a string of at most 64 characters")
    for name in ("max_action_amount", "max_total_amount"):
        if biz.get(name) is not None and limit_cents(biz.get(name)) is None:
            raise InvalidRequest(f"{name} must be an amount string with at most 2 decimals, above 0")
    return model, messages


def limit_cents(value: Any) -> int | None:
    """A B5 limit (``"12.50"``) in cents, or None when malformed."""
    if not isinstance(value, str) or not re.fullmatch(r"\d{1,9}(\.\d{1,2})?", value):
        return None
    cents = int(Decimal(value) * 100)
    return cents if cents > 0 else None


def _media_ack(parts: Sequence[Mapping[str, Any]]) -> list[str]:
    counts: dict[str, int] = {}
    acks = []
    for part in parts:
        kind = part.get("type")
        if kind == "text":
            continue
        counts[kind] = n = counts.get(kind, 0) + 1
        if kind == "image" and part.get("image_url"):
            acks.append(f"[image {n}: {part['image_url']}]")
        elif kind == "image":
            acks.append(f"[image {n}: {part.get('mime_type', 'image/png')}, "
                        f"{_b64_len(part.get('image_base64'))} bytes]")
        elif kind == "audio":
            acks.append(f"[audio {n}: {part.get('format', 'wav')}, {_b64_len(part.get('audio_base64'))} bytes]")
        elif kind == "video":
            acks.append(f"[video {n}: {part.get('video_url', '')}]")
    return acks


_MEDIA_TOKENS = {"image": 85, "audio": 100, "video": 200}


def _prompt_usage(messages: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    tokens = chars = 0
    for msg in messages:
        text = prompt_text(msg)
        tokens += 3 + count_tokens(text)
        chars += len(text)
        for part in _parts(msg.get("content")):
            tokens += _MEDIA_TOKENS.get(str(part.get("type")), 0)
    return tokens, chars


def _last_user(messages: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    for msg in reversed(messages):
        if msg.get("role") == "user":
            return msg
    return None


def check_compliance(messages: Sequence[Mapping[str, Any]]) -> None:
    for msg in messages:
        if msg.get("role") != "user":
            continue
        text = prompt_text(msg).lower()
        if ("income" in text and ("forecast" in text or "predict" in text)) or (
            "收入" in text and "预测" in text
        ):
            raise ModelError(
                "AI.COMPLIANCE_REJECTED", "income forecasting requires a licence and is refused"
            )


def _amount(text: str | None) -> str:
    value = Decimal(text) if text else Decimal("0")
    return str(value.quantize(Decimal("0.01")))


def fee(amount: str) -> str:
    return str((Decimal(amount) * FEE_RATE).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def action_intents(text: str, allowed: Sequence[str]) -> list[ActionIntent]:
    """The payment actions the last user text asks for, limited to ``allowed_actions``."""
    if not allowed:
        return []
    fail = "PAYER_ACCOUNT_INVALID" if "invalid payer" in text.lower() else None
    intents = []
    if "REFUND" in allowed and (m := _REFUND.search(text)):
        intents.append(ActionIntent("REFUND", _amount(m.group(1)), fail))
    if "FREEZE_ACCOUNT" in allowed and (m := _FREEZE.search(text)):
        intents.append(ActionIntent("FREEZE_ACCOUNT", _amount(m.group(1)), fail))
    return intents


def _cast(value: str, schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type") if isinstance(schema, Mapping) else None
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value
    if kind == "boolean":
        return value.lower() in ("true", "1", "yes")
    return value


def _pick_tool(biz: Mapping[str, Any], text: str) -> Mapping[str, Any] | None:
    tools = [t.get("function", {}) for t in biz.get("tools") or [] if isinstance(t, Mapping)]
    tools = [t for t in tools if isinstance(t, Mapping) and isinstance(t.get("name"), str)]
    choice = biz.get("tool_choice", "auto")
    if not tools or choice == "none":
        return None
    if isinstance(choice, Mapping):
        name = (choice.get("function") or {}).get("name")
        return next((t for t in tools if t["name"] == name), None)
    for tool in tools:
        if tool["name"] in text:
            return tool
    return tools[0] if choice == "required" else None


def _tool_call(tool: Mapping[str, Any], text: str) -> dict[str, Any]:
    props = (tool.get("parameters") or {}).get("properties") or {}
    args = {k: _cast(v, props[k]) for k, v in _KV.findall(text) if k in props}
    arguments = json.dumps(args, ensure_ascii=False, separators=(",", ":"))
    call_id = "call_" + hashlib.sha1((tool["name"] + arguments).encode()).hexdigest()[:20]
    return {"id": call_id, "type": "function", "function": {"name": tool["name"], "arguments": arguments}}


def schema_instance(schema: Mapping[str, Any], values: Mapping[str, str], text: str,
                    root: Mapping[str, Any] | None = None, key: str | None = None, depth: int = 0) -> Any:
    """The deterministic JSON value for ``schema`` (see module docstring, "JSON Schema answers")."""
    root = schema if root is None else root
    if depth > 16:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        return schema_instance(target, values, text, root, key, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(combinator) or () if isinstance(o, Mapping) and o.get("type") != "null"]
        if options:
            return schema_instance(options[0], values, text, root, key, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties") or {}
        return {name: schema_instance(sub, values, text, root, name, depth + 1) for name, sub in props.items()}
    if kind == "array":
        items = schema.get("items")
        count = int(schema.get("minItems") or 1)
        return [schema_instance(items, values, text, root, key, depth + 1) for _ in range(count)] \
            if isinstance(items, Mapping) else []
    if key is not None and key in values:
        return _cast(values[key], schema)
    return {"integer": 0, "number": 0.0, "boolean": False, "null": None}.get(str(kind), text)


def chat(
    biz: Mapping[str, Any], chat_models: Sequence[str], max_context_chars: int,
    action_summary: str | None = None, *, regulated: bool = True,
) -> ChatResult:
    """Answer one validated B1 request, or raise ``InvalidRequest``/``ModelError``.

    ``regulated=False`` is the OpenAI-compatible endpoint, which stands for a non-Alipay (regional)
    provider: any model name is served and the Chinese financial compliance rule does not apply, so
    it can answer what Alipay refuses (the content-policy fallback).

    ``action_summary`` is appended once the gateway has executed the returned intents (it calls
    ``chat`` again with it), so the text states what really happened, repeats included.
    """
    model, messages = validate_chat(biz)
    if regulated and model not in chat_models:
        raise ModelError("AI.MODEL_NOT_FOUND", f"model {model} does not exist")
    prompt_tokens, input_chars = _prompt_usage(messages)
    if input_chars > max_context_chars:
        raise ModelError(
            "AI.CONTEXT_LENGTH_EXCEEDED",
            f"prompt has {input_chars} characters; the limit is {max_context_chars}",
        )
    if regulated:
        check_compliance(messages)
    last = messages[-1]
    user = _last_user(messages)
    user_text = prompt_text(user) if user is not None else ""
    intents = action_intents(user_text, [str(a) for a in biz.get("allowed_actions") or []])
    tool = _pick_tool(biz, user_text) if last.get("role") == "user" else None
    if tool is not None:
        clauses = [part for part in user_text.split(";") if tool["name"] in part]
        calls = [_tool_call(tool, part) for part in clauses] if len(clauses) > 1 else [_tool_call(tool, user_text)]
        out = "".join(call["function"]["arguments"] for call in calls)
        return ChatResult(
            None, calls, "tool_calls",
            _usage(prompt_tokens, count_tokens(tool["name"] * len(calls) + out), input_chars, len(out)),
            intents,
        )
    if last.get("role") == "tool":
        text = "Tool result: " + prompt_text(last)
    else:
        text = " ".join(["You said: " + user_text, *_media_ack(_parts(user.get("content") if user else None))])
    if action_summary:
        text += " " + action_summary
    if isinstance(biz.get("response_format"), Mapping) and biz["response_format"].get("type") == "json_object":
        schema = schema_in_messages(messages)
        if schema is not None:
            text = json.dumps(schema_instance(schema, dict(_KV.findall(user_text)), text), ensure_ascii=False)
        else:
            text = json.dumps({"answer": text}, ensure_ascii=False)
    finish = "stop"
    for stop in biz.get("stop") or []:
        if isinstance(stop, str) and stop and stop in text:
            text = text[: text.index(stop)]
    max_tokens = biz.get("max_tokens")
    if max_tokens is not None:
        words = text.split()
        if len(words) > max_tokens:
            text, finish = " ".join(words[:max_tokens]), "length"
    return ChatResult(
        text, None, finish, _usage(prompt_tokens, count_tokens(text), input_chars, len(text)), intents
    )


def action_summary(actions: Sequence[Mapping[str, Any]]) -> str | None:
    if not actions:
        return None
    return "Actions: " + "; ".join(f"{a['action']} {a['status']}" for a in actions)


def _usage(prompt: int, completion: int, input_chars: int, output_chars: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
        "input_chars": input_chars, "output_chars": output_chars,
    }


# ------------------------------------------------------------------------------------------- embed
def validate_embed(biz: Any) -> tuple[str, list[str], int | None]:
    model = _model_of(biz)
    texts = biz.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not 1 <= len(texts) <= 32:
        raise InvalidRequest("input must be an array of 1 to 32 strings")
    for i, text in enumerate(texts):
        if not isinstance(text, str) or len(text) > 8192:
            raise InvalidRequest(f"input[{i}] must be a string of at most 8192 characters")
    dims = biz.get("dimensions")
    if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= 4096):
        raise InvalidRequest("dimensions must be an integer from 1 to 4096")
    return model, texts, dims


def embedding(text: str, dimensions: int) -> list[float]:
    """A unit-norm vector determined by ``text`` alone (see module docstring)."""
    raw = text.encode("utf-8")
    values: list[int] = []
    counter = 0
    while len(values) < dimensions:
        values.extend(struct.unpack("<8i", hashlib.sha256(raw + counter.to_bytes(4, "little")).digest()))
        counter += 1
    del values[dimensions:]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def embed(
    biz: Mapping[str, Any], embed_models: Sequence[str], default_dimensions: int
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """``(data, usage)`` of a B2 request, or ``InvalidRequest``/``ModelError``."""
    model, texts, dims = validate_embed(biz)
    if model not in embed_models:
        raise ModelError("AI.MODEL_NOT_FOUND", f"model {model} does not exist")
    size = dims or default_dimensions
    data = [{"index": i, "embedding": embedding(t, size)} for i, t in enumerate(texts)]
    tokens = sum(count_tokens(t) for t in texts)
    return data, {"prompt_tokens": tokens, "total_tokens": tokens, "input_chars": sum(len(t) for t in texts)}
