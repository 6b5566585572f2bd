"""B3 stream integrity: every event's data is collected and the closing ``sign`` event must verify.

Chunks reach the caller as they arrive (that is what streaming is for); the verdict comes at the end,
and a stream that ends without a valid ``sign`` event raises instead of passing for complete.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ...errors import ProtocolError, SignatureError, gateway_error
from ...wire import protocol
from ...wire.signing import rsa_verify
from .. import diagnosis

if TYPE_CHECKING:
    from ...settings import AlipaySettings


class StreamVerifier:
    """Follows one B3 stream: collects every data payload and checks the closing ``sign`` event."""

    def __init__(self, settings: AlipaySettings, provider: str, model: str) -> None:
        self._settings = settings
        self._provider = provider
        self._model = model
        self._payloads: list[str] = []
        self._signed = False
        self._error: dict[str, Any] | None = None
        self.out_request_no: str | None = None  # the one sent: returned actions must carry it

    def accept(self, event: protocol.SSEEvent) -> dict[str, Any] | None:
        if self._signed:
            raise ProtocolError("data arrived after the stream's sign event")
        if event.event == "sign":
            self._check_sign(event.data)
            if self._error is not None:  # now authenticated: it may choose the Router's path
                raise gateway_error(self._error, model=self._model, provider=self._provider)
            return None
        self._payloads.append(event.data)
        try:
            data = json.loads(event.data)
        except ValueError:
            raise ProtocolError("a stream event is not JSON") from None
        if self._error is not None:
            raise ProtocolError("data arrived after the stream's error event")
        if event.event == "error":
            # Unauthenticated until the sign event covers it: an unsigned error must not pick a fallback
            # path (content policy, context window) that only a signed one may.
            self._error = data if isinstance(data, dict) else {"code": "20000"}
            return None
        check_actions(data, self.out_request_no)
        return data

    def _check_sign(self, data: str) -> None:
        s = self._settings
        self._signed = True
        if not s.verify_response:
            return
        try:
            sign = json.loads(data)
        except ValueError:
            raise SignatureError("the stream's sign event is not JSON") from None
        if sign.get("sign_type", s.sign_type) != s.sign_type:
            raise SignatureError("the stream is signed with another sign_type than configured")
        key = s.response_key(sign.get("alipay_cert_sn")) if s.cert_ring else s.response_key
        content = protocol.stream_sign_content(self._payloads)
        if not rsa_verify(content, str(sign.get("sign", "")), key, s.sign_type):
            raise diagnosis.unverified(s, SignatureError("the stream's sign event does not verify"))
        diagnosis.verified(s)

    def finish(self, decoder: protocol.SSEDecoder) -> None:
        if not self._signed:
            if self._error is not None:
                raise ProtocolError("the stream's error event was never signed: unauthenticated")
            raise ProtocolError("the stream ended without its sign event: incomplete or forged")
        if decoder.pending:
            raise ProtocolError("bytes arrived after the stream's sign event")


class StreamReader:
    """Bytes in, verified chunk dicts out: the one decoding loop behind the sync and the async stream."""

    def __init__(self, verifier: StreamVerifier, decoder: protocol.SSEDecoder) -> None:
        self._verifier, self._decoder = verifier, decoder

    def feed(self, raw: bytes) -> Iterator[dict[str, Any]]:
        """Lazily, event by event: a chunk reaches the caller before a later event of the same read fails."""
        for event in self._decoder.feed(raw):
            chunk = self._verifier.accept(event)
            if chunk is not None:
                yield chunk

    def finish(self) -> None:
        self._verifier.finish(self._decoder)


def check_actions(node: Mapping[str, Any], out_request_no: str | None) -> None:
    """Actions that answer another request than the one sent are not this call's: refuse them."""
    actions = node.get("actions")
    if not actions or out_request_no is None:
        return
    for action in actions:
        if isinstance(action, Mapping) and action.get("out_request_no") not in (None, out_request_no):
            raise SignatureError("the answer's actions carry another out_request_no than the request sent")


def is_event_stream(headers: Mapping[str, str]) -> bool:
    return "text/event-stream" in (headers.get("content-type") or headers.get("Content-Type") or "")
