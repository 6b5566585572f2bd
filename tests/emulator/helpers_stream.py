"""Reading a B3 stream the way a client must: every event decoded, the sign event verified."""

from __future__ import annotations

import json
from typing import Any

import httpx

from litellm_alipay.wire import protocol
from litellm_alipay.wire.signing import rsa_verify


def read_stream(resp: httpx.Response) -> tuple[list[protocol.SSEEvent], bool]:
    """(events, pending bytes left) of a whole streamed body."""
    decoder = protocol.SSEDecoder()
    events = list(decoder.feed(resp.content))
    return events, decoder.pending


def sign_ok(events: list[protocol.SSEEvent], public_key: Any) -> bool:
    """True when the last event is ``sign`` and it verifies over every earlier data payload."""
    if not events or events[-1].event != "sign":
        return False
    sign = json.loads(events[-1].data)
    content = protocol.stream_sign_content([e.data for e in events[:-1]])
    return rsa_verify(content, sign["sign"], public_key, sign["sign_type"])


def text_of(events: list[protocol.SSEEvent]) -> str:
    out = []
    for e in events:
        if e.event == "message":
            for choice in json.loads(e.data)["choices"]:
                out.append(choice["delta"].get("content") or "")
    return "".join(out)
