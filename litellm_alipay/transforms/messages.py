"""OpenAI chat messages → B1 messages.

Strings are passed through untouched (no normalisation: simplified and traditional Chinese and emoji
must reach the model exactly as sent). Anything B1 cannot carry is refused with ``BadRequestError``
naming the field path, e.g. ``messages[2].content[1].type 'file' is not supported by Alipay``, rather
than silently dropped: a dropped image or tool result changes the answer.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from ._errors import bad_request

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
_URL_SCHEMES = ("https://", "http://")


def convert_messages(model: str, messages: Any) -> list[dict[str, Any]]:
    """Every message converted, in order; an empty list is refused (B1 requires messages)."""
    if not isinstance(messages, list) or not messages:
        raise bad_request(model, "messages must be a non-empty list")
    return [_message(model, f"messages[{i}]", m) for i, m in enumerate(messages)]


def _message(model: str, path: str, message: Any) -> dict[str, Any]:
    if not isinstance(message, Mapping):
        raise bad_request(model, f"{path} must be an object, got {type(message).__name__}")
    name = message.get("role")
    role = ROLES.get(name) if isinstance(name, str) else None
    if role is None:
        raise bad_request(model, f"{path}.role {message.get('role')!r} is not supported by Alipay")
    if message.get("function_call") is not None:
        raise bad_request(model, f"{path}.function_call is not supported by Alipay (use tool_calls)")
    if role == "tool":
        return _tool_message(model, path, message)
    out: dict[str, Any] = {"role": role}
    content = message.get("content")
    tool_calls = message.get("tool_calls") if role == "assistant" else None
    if content is not None:
        out["content"] = _content(model, f"{path}.content", content)
    elif not tool_calls:
        raise bad_request(model, f"{path}.content is missing")
    if tool_calls:
        out["tool_calls"] = _tool_calls(model, f"{path}.tool_calls", tool_calls)
    return out


def _tool_message(model: str, path: str, message: Mapping[str, Any]) -> dict[str, Any]:
    """B1 tool content is text: a parts list is joined (text parts only)."""
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise bad_request(model, f"{path}.tool_call_id is missing")
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(_text_of(model, f"{path}.content[{j}]", p) for j, p in enumerate(content))
    elif content is None:
        content = ""
    elif not isinstance(content, str):
        raise bad_request(model, f"{path}.content must be a string or a list of text parts")
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _text_of(model: str, path: str, part: Any) -> str:
    if not isinstance(part, Mapping) or part.get("type") != "text":
        kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
        raise bad_request(model, f"{path}.type {kind!r} is not supported by Alipay in a tool message")
    return _text(model, path, part)


def _text(model: str, path: str, part: Mapping[str, Any]) -> str:
    text = part.get("text")
    if not isinstance(text, str):
        raise bad_request(model, f"{path}.text must be a string")
    return text


def _content(model: str, path: str, content: Any) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    return _each(model, path, content, _part, "a string or a list of parts")


def _each(model: str, path: str, items: Any, convert: Any, what: str) -> list[dict[str, Any]]:
    """Each item of a list converted (its index in the path of any error), or the error naming ``what``."""
    if not isinstance(items, list):
        raise bad_request(model, f"{path} must be {what}")
    return [convert(model, f"{path}[{i}]", item) for i, item in enumerate(items)]


def _part(model: str, path: str, part: Any) -> dict[str, Any]:
    if not isinstance(part, Mapping):
        raise bad_request(model, f"{path} must be an object, got {type(part).__name__}")
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "text": _text(model, path, part)}
    if kind == "image_url":
        return _image(model, f"{path}.image_url", part.get("image_url"))
    if kind == "input_audio":
        return _audio(model, f"{path}.input_audio", part.get("input_audio"))
    if kind == "video_url":
        return {"type": "video", "video_url": _url(model, f"{path}.video_url", part.get("video_url"))}
    raise bad_request(model, f"{path}.type {kind!r} is not supported by Alipay")


def _url(model: str, path: str, value: Any) -> str:
    """``{"url": …}`` or a bare string; only http(s) URLs (the gateway fetches them itself)."""
    if isinstance(value, Mapping):
        value, path = value.get("url"), f"{path}.url"
    if not isinstance(value, str) or not value.startswith(_URL_SCHEMES):
        raise bad_request(model, f"{path} must be an http(s) URL")
    return value


def _image(model: str, path: str, value: Any) -> dict[str, Any]:
    url = value.get("url") if isinstance(value, Mapping) else value
    url_path = f"{path}.url" if isinstance(value, Mapping) else path
    if isinstance(url, str) and url.startswith("data:"):
        mime, data = _data_url(model, url_path, url)
        if not mime.startswith("image/"):
            raise bad_request(model, f"{url_path} has media type {mime!r}, not an image")
        return {"type": "image", "image_base64": data, "mime_type": mime}
    return {"type": "image", "image_url": _url(model, path, value)}


def _data_url(model: str, path: str, url: str) -> tuple[str, str]:
    """``data:<mime>;base64,<data>`` → (mime, data), the data checked to be base64."""
    head, comma, data = url[5:].partition(",")
    mime, _, encoding = head.partition(";")
    if not comma or encoding.lower() != "base64" or "/" not in mime or not data:
        raise bad_request(model, f"{path} is not a valid data URL (expected data:<type>;base64,<data>)")
    _check_base64(model, path, data)
    return mime.lower(), data


def _check_base64(model: str, path: str, data: str) -> None:
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(model, f"{path} is not valid base64") from None


def _audio(model: str, path: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise bad_request(model, f"{path} must be an object with data and format")
    data, fmt = value.get("data"), value.get("format")
    if not isinstance(data, str) or not data:
        raise bad_request(model, f"{path}.data is missing")
    if not isinstance(fmt, str) or not fmt:
        raise bad_request(model, f"{path}.format is missing")
    _check_base64(model, f"{path}.data", data)
    return {"type": "audio", "audio_base64": data, "format": fmt}


def _tool_calls(model: str, path: str, calls: Any) -> list[dict[str, Any]]:
    return _each(model, path, calls, _tool_call, "a list")


def _tool_call(model: str, path: str, call: Any) -> dict[str, Any]:
    """Arguments stay a JSON string (B1); a dict (some SDKs build one) is serialised without escaping."""
    if not isinstance(call, Mapping):
        raise bad_request(model, f"{path} must be an object")
    if call.get("type", "function") != "function":
        raise bad_request(model, f"{path}.type {call.get('type')!r} is not supported by Alipay")
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise bad_request(model, f"{path}.id is missing")
    function = call.get("function")
    if not isinstance(function, Mapping):
        raise bad_request(model, f"{path}.function is missing")
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise bad_request(model, f"{path}.function.name is missing")
    arguments = function.get("arguments")
    if arguments is None:
        arguments = "{}"
    elif not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
