"""The wire format shared by the client and the emulator: methods, envelopes, result codes, SSE.

Pure: no I/O. The gateway adapter builds requests with it; the emulator parses them with it and builds
its responses with it, so the two sides can never drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ResponseLimitError
from .form import form_encode
from .signing import KeyText, PrivateKey, beijing_timestamp, param_text, sign_params
from .signing._response import response_node_name

METHOD_CHAT = "alipay.cloud.ai.chat"
METHOD_EMBED = "alipay.cloud.ai.embed"
METHOD_OAUTH = "alipay.system.oauth.token"
V3_PATHS = {METHOD_CHAT: "/v3/alipay/cloud/ai/chat", METHOD_EMBED: "/v3/alipay/cloud/ai/embed"}
V3_METHODS = {path: method for method, path in V3_PATHS.items()}

SUCCESS = "10000"
EMBED_BATCH = 32
PRODUCTION_URL = "https://openapi.alipay.com/gateway.do"
SANDBOX_URL = "https://openapi-sandbox.dl.alipaydev.com/gateway.do"

#: Parameters sent in the query string; the rest go in the form body. The gateway merges both (A1).
#: Unlike the official SDK, ``sign`` and every token travel in the body: URLs end up in access logs,
#: proxies' logs and httpx's INFO line, bodies do not.
QUERY_PARAMS = frozenset({
    "app_id", "method", "format", "charset", "sign_type", "timestamp", "version",
    "app_cert_sn", "alipay_root_cert_sn", "encrypt_type", "notify_url", "return_url",
})

__all__ = [
    "METHOD_CHAT", "METHOD_EMBED", "METHOD_OAUTH", "V3_PATHS", "SUCCESS", "EMBED_BATCH",
    "response_node_name", "common_params", "sign_request", "encode_request", "is_success",
    "node_body", "sse_event", "stream_sign_content", "SSEDecoder", "SSEEvent",
]


def common_params(
    app_id: str,
    method: str,
    biz_content: Mapping[str, Any] | str | None = None,
    *,
    charset: str = "utf-8",
    sign_type: str = "RSA2",
    timestamp: str | None = None,
    **extra: str | None,
) -> dict[str, str]:
    """The A2 parameter set for one call, ``biz_content`` already serialised; empty values left out."""
    params: dict[str, str] = {
        "app_id": app_id, "method": method, "format": "json", "charset": charset,
        "sign_type": sign_type, "timestamp": timestamp or beijing_timestamp(), "version": "1.0",
    }
    if biz_content is not None:
        params["biz_content"] = (
            biz_content if isinstance(biz_content, str)
            else json.dumps(biz_content, ensure_ascii=False, separators=(",", ":"))
        )
    for key, value in extra.items():
        if value is not None and str(value).strip():
            params[key] = str(value)
    return params


def sign_request(params: dict[str, str], key: KeyText | PrivateKey | bytes) -> dict[str, str]:
    """``params`` with its ``sign`` added (the dict is copied; values are the exact text signed)."""
    signed = {k: param_text(v) for k, v in params.items() if v is not None and param_text(v).strip()}
    signed["sign"] = sign_params(signed, key)
    return signed


def encode_request(params: Mapping[str, str], charset: str = "utf-8") -> tuple[str, bytes]:
    """``(query string, form body)`` as the official SDK sends them, both encoded with ``charset``."""
    query = {k: v for k, v in params.items() if k in QUERY_PARAMS}
    body = {k: v for k, v in params.items() if k not in QUERY_PARAMS}
    return (
        form_encode(query, charset),
        form_encode(body, charset).encode("ascii"),
    )


def form_content_type(charset: str) -> str:
    return f"application/x-www-form-urlencoded;charset={charset}"


def is_success(node: Mapping[str, Any]) -> bool:
    """Success is code 10000 *and* no sub_code (A4), on a signed node."""
    return (
        str(node.get("code")) == SUCCESS and not node.get("sub_code") and not node.get("_unsigned")
    )


def node_body(
    method: str, node_json: str, sign: str | None, *, error: bool = False, cert_sn: str | None = None
) -> str:
    """A gateway response body around the exact node text that was signed."""
    name = "error_response" if error else response_node_name(method)
    parts = [f'"{name}":{node_json}']
    if cert_sn:
        parts.append(f'"alipay_cert_sn":"{cert_sn}"')
    if sign is not None:
        parts.append(f'"sign":"{sign}"')
    return "{" + ",".join(parts) + "}"


# --------------------------------------------------------------------------------------------- SSE
@dataclass(frozen=True)
class SSEEvent:
    event: str  # "message" when the event line is absent
    data: str


def sse_event(data: str, event: str | None = None) -> bytes:
    """One SSE event. ``data`` is one line of JSON, so it needs a single ``data:`` line."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


def stream_sign_content(datas: list[str] | tuple[str, ...]) -> bytes:
    """B3: every earlier event's data payload, each followed by ``\\n``."""
    return "".join(d + "\n" for d in datas).encode("utf-8")


class SSEDecoder:
    """Incremental SSE parser: feed bytes as they arrive, get whole events back.

    Linear in the stream's size however it is cut: bytes are appended to a ``bytearray`` (amortised
    O(1) per byte), and the search for an event's end resumes where the last one stopped (less the
    three bytes a separator may straddle) instead of rescanning the buffered event on every chunk.
    """

    def __init__(self, charset: str = "utf-8", max_event: int = 1024 * 1024) -> None:
        self._buffer = bytearray()
        self._searched = 0  # bytes of _buffer already known to hold no separator
        self._charset = charset
        self._max_event = max_event  # one event's bytes: the ``max_sse_event`` setting (transport/limits.py)

    def feed(self, chunk: bytes) -> Iterator[SSEEvent]:
        self._buffer += chunk
        while True:
            cut = _event_end(self._buffer, max(0, self._searched - 3))
            if cut is None:
                self._searched = len(self._buffer)
                if self._searched > self._max_event:
                    raise ResponseLimitError("max_sse_event", self._max_event, "one server-sent event")
                return
            if cut[0] > self._max_event:
                raise ResponseLimitError("max_sse_event", self._max_event, "one server-sent event")
            raw = bytes(self._buffer[: cut[0]])
            del self._buffer[: cut[1]]
            self._searched = 0
            event = _parse_event(raw.decode(self._charset))
            if event is not None:
                yield event

    @property
    def pending(self) -> bool:
        """True when bytes of an unfinished event are buffered (a cut stream)."""
        return bool(self._buffer.strip())


def _event_end(buffer: bytes | bytearray, start: int = 0) -> tuple[int, int] | None:
    """``(end of the event, start of the next)`` for the first blank line at or after ``start``."""
    best = None
    for sep in (b"\n\n", b"\r\n\r\n"):
        at = buffer.find(sep, start, best[0] + len(sep) if best else len(buffer))
        if at >= 0 and (best is None or at < best[0]):
            best = (at, at + len(sep))
    return best


def _parse_event(text: str) -> SSEEvent | None:
    event, data = "message", []
    for line in text.splitlines():
        if not line or line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
    if not data and event == "message":
        return None
    return SSEEvent(event, "\n".join(data))
