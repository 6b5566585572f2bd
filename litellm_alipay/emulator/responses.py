"""ASGI responses that can misbehave on purpose: truncated bodies, reset connections, cut streams.

Starlette endpoints return these like any ``Response``; they are plain ASGI callables so they can do
what a well-behaved framework response never would. The socket is reached through uvicorn's
connection transport, which ``EmulatorApp`` records in the scope (``TRANSPORT_KEY``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from starlette.types import Receive, Scope, Send

TRANSPORT_KEY = "alipay_emulator.transport"
JSON = b"application/json;charset=utf-8"
SSE = b"text/event-stream; charset=utf-8"


async def _await_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def sleep_unless_disconnected(receive: Receive, seconds: float) -> bool:
    """Sleep ``seconds``; True (early) if the client hung up meanwhile, so a stall ends cleanly."""
    if seconds <= 0:
        return False
    watcher = asyncio.ensure_future(_await_disconnect(receive))
    try:
        done, _ = await asyncio.wait({watcher}, timeout=seconds)
        return bool(done)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher


async def close_connection(scope: Scope, receive: Receive, *, reset: bool) -> bool:
    """Close (or reset) the client's socket; False when the server exposes no transport."""
    transport = scope.get(TRANSPORT_KEY)
    if transport is None:
        return False
    if reset:
        transport.abort()
    else:
        transport.close()
    # Let the server see the disconnect, so it neither answers 500 for us nor logs an error.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(_await_disconnect(receive), 2.0)
    return True


class RawResponse:
    """Bytes with a status and headers; ``fault`` may truncate the body or drop the connection."""

    def __init__(
        self, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = (),
        content_type: bytes = JSON, fault: str | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = [(b"content-type", content_type), *headers]
        self.fault = fault

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fault == "drop":
            if await close_connection(scope, receive, reset=True):
                return
            self.fault = "truncate"  # no transport: the closest thing to a dropped connection
        length = str(len(self.body)).encode()
        await send({
            "type": "http.response.start", "status": self.status,
            "headers": [*self.headers, (b"content-length", length)],
        })
        if self.fault == "truncate":
            await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2],
                        "more_body": True})
            if not await close_connection(scope, receive, reset=False):
                raise ConnectionAbortedError("truncated response")  # the server closes the socket
            return
        await send({"type": "http.response.body", "body": self.body})


class EventStreamResponse:
    """A finished list of SSE events sent one by one; ``fault`` may truncate or drop it."""

    def __init__(self, events: Sequence[bytes], headers: Sequence[tuple[bytes, bytes]] = (),
                 fault: str | None = None, interval: float = 0.2) -> None:
        self.events = events
        self.headers = [(b"content-type", SSE), (b"cache-control", b"no-cache"), *headers]
        self.fault = fault
        self.interval = interval

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fault == "drop" and await close_connection(scope, receive, reset=True):
            return
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        events: Sequence[bytes] = self.events
        if self.fault in ("truncate", "drop"):
            blob = b"".join(events)
            await send({"type": "http.response.body", "body": blob[: len(blob) // 2], "more_body": True})
            if not await close_connection(scope, receive, reset=True):
                raise ConnectionAbortedError("truncated stream")
            return
        for event in events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        if self.fault == "trickle":
            await _trickle(send, receive, self.interval)
            return
        await send({"type": "http.response.body", "body": b""})


async def _trickle(send: Send, receive: Receive, interval: float, limit: float = 120.0) -> None:
    """Comments that keep a stream alive without ever finishing it, until the client disconnects."""
    for _ in range(max(1, int(limit / interval))):
        try:
            await send({"type": "http.response.body", "body": b": still thinking\n\n", "more_body": True})
        except OSError:
            return
        try:
            message = await asyncio.wait_for(receive(), interval)
        except TimeoutError:
            continue
        if message.get("type") == "http.disconnect":
            return
    await send({"type": "http.response.body", "body": b""})


def json_headers(extra: dict[str, str] | None = None) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in (extra or {}).items()]


def plain(status: int, text: str) -> RawResponse:
    return RawResponse(status, text.encode(), content_type=b"text/plain; charset=utf-8")


def as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()
