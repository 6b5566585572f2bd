"""``POST /v1/chat/completions`` and ``POST /v1/embeddings``: an unsigned OpenAI-shaped front end.

It answers from the same deterministic model as the Alipay methods, so a benchmark of LiteLLM's
``openai/`` provider against it is a fair baseline for the Alipay provider: same answers, same
process, no signatures. No authentication, quotas or faults.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from .core import Emulator, Refusal, dumps
from .responses import EventStreamResponse, RawResponse

_ERROR_TYPES = {400: "invalid_request_error", 403: "invalid_request_error", 404: "invalid_request_error"}


def _part(part: Any) -> Any:
    """OpenAI content parts to B1 parts (image_url / input_audio)."""
    if not isinstance(part, dict):
        return part
    kind = part.get("type")
    if kind == "image_url":
        url = (part.get("image_url") or {}).get("url", "")
        if url.startswith("data:") and ";base64," in url:
            mime, data = url[5:].split(";base64,", 1)
            return {"type": "image", "image_base64": data, "mime_type": mime}
        return {"type": "image", "image_url": url}
    if kind == "input_audio":
        audio = part.get("input_audio") or {}
        return {"type": "audio", "audio_base64": audio.get("data", ""), "format": audio.get("format", "wav")}
    return part


def to_biz(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI chat request as a B1 ``biz_content``."""
    biz = {k: v for k, v in body.items() if k not in ("messages", "stop", "stream_options", "n")}
    messages = []
    for msg in body.get("messages") or []:
        if isinstance(msg, dict):
            msg = dict(msg)
            if msg.get("role") == "developer":
                msg["role"] = "system"
            if isinstance(msg.get("content"), list):
                msg["content"] = [_part(p) for p in msg["content"]]
        messages.append(msg)
    biz["messages"] = messages
    stop = body.get("stop")
    if stop is not None:
        biz["stop"] = [stop] if isinstance(stop, str) else stop
    if "max_completion_tokens" in body and "max_tokens" not in body:
        biz["max_tokens"] = biz.pop("max_completion_tokens")
    biz.pop("max_completion_tokens", None)
    return biz


def _error(refusal: Refusal) -> RawResponse:
    status = refusal.http_status if refusal.http_status != 200 else 400
    payload = {"error": {"message": refusal.sub_msg, "type": _ERROR_TYPES.get(status, "api_error"),
                         "param": None, "code": refusal.sub_code}}
    return RawResponse(status, dumps(payload).encode())


def _usage(usage: dict[str, int]) -> dict[str, int]:
    return {k: usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens") if k in usage}


async def _json_object(request: Request) -> dict[str, Any] | None:
    """The request body as a JSON object, or None when it is not one."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class OpenAICompat:
    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator

    async def chat(self, request: Request) -> Any:
        self.emu.state.stats.openai_requests["chat.completions"] += 1
        body = await _json_object(request)
        if body is None:
            return _error(Refusal("40002", "AI.INVALID_REQUEST", "body must be a JSON object", 400))
        self.emu.state.stats.openai_body_keys.update(body)
        try:
            answer = self.emu.run_chat("openai", to_biz(body), regulated=False)
        except Refusal as refusal:
            return _error(refusal)
        cid = "chatcmpl-" + answer.trace_id
        result = answer.result
        if body.get("stream") is True:
            return EventStreamResponse(self._chunks(cid, answer, body))
        message: dict[str, Any] = {"role": "assistant", "content": result.content}
        if result.tool_calls:
            message["tool_calls"] = result.tool_calls
        payload = {
            "id": cid, "object": "chat.completion", "created": answer.created, "model": answer.model,
            "choices": [{"index": 0, "message": message, "finish_reason": result.finish_reason,
                         "logprobs": None}],
            "usage": _usage(result.usage),
        }
        return RawResponse(200, dumps(payload).encode())

    @staticmethod
    def _chunks(cid: str, answer: Any, body: dict[str, Any]) -> list[bytes]:
        base = {"id": cid, "object": "chat.completion.chunk", "created": answer.created,
                "model": answer.model}
        events = []
        for text in answer.chunks():
            chunk = json.loads(text)
            out = {**base, "choices": [{**c, "logprobs": None} for c in chunk["choices"]]}
            if "usage" in chunk and (body.get("stream_options") or {}).get("include_usage"):
                events.append(b"data: " + dumps(out).encode() + b"\n\n")
                out = {**base, "choices": [], "usage": _usage(chunk["usage"])}
            events.append(b"data: " + dumps(out).encode() + b"\n\n")
        events.append(b"data: [DONE]\n\n")
        return events

    async def embeddings(self, request: Request) -> Any:
        self.emu.state.stats.openai_requests["embeddings"] += 1
        body = await _json_object(request)
        if body is None:
            return _error(Refusal("40002", "AI.INVALID_REQUEST", "body must be a JSON object", 400))
        biz = {"model": body.get("model"), "input": body.get("input")}
        if body.get("dimensions") is not None:
            biz["dimensions"] = body["dimensions"]
        try:
            node = self.emu.run_embed(biz)
        except Refusal as refusal:
            return _error(refusal)
        payload = {
            "object": "list", "model": node["model"],
            "data": [{"object": "embedding", **d} for d in node["data"]],
            "usage": {"prompt_tokens": node["usage"]["prompt_tokens"],
                      "total_tokens": node["usage"]["total_tokens"]},
        }
        return RawResponse(200, dumps(payload).encode())
