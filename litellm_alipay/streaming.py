"""B3 stream integrity: every event's data is collected and the closing ``sign`` event must verify.

Chunks reach the caller as they arrive (that is what streaming is for); the verdict comes at the end,
and a stream that ends without a valid ``sign`` event raises instead of passing for complete.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import diagnosis, protocol
from .errors import ProtocolError, SignatureError, gateway_error
from .signing import rsa_verify

if TYPE_CHECKING:
    from .gateway import Gateway


class StreamVerifier:
    """Follows one B3 stream: collects every data payload and checks the closing ``sign`` event."""

    def __init__(self, gateway: Gateway, model: str) -> None:
        self._gateway = gateway
        self._model = model
        self._payloads: list[str] = []
        self._signed = False

    def accept(self, event: protocol.SSEEvent) -> dict[str, Any] | None:
        if self._signed:
            raise ProtocolError("data arrived after the stream's sign event")
        if event.event == "sign":
            self._check_sign(event.data)
            return None
        self._payloads.append(event.data)
        try:
            data = json.loads(event.data)
        except ValueError:
            raise ProtocolError("a stream event is not JSON") from None
        if event.event == "error":
            raise gateway_error(data, model=self._model, provider=self._gateway.provider)
        return data

    def _check_sign(self, data: str) -> None:
        s = self._gateway.settings
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
            raise ProtocolError("the stream ended without its sign event: incomplete or forged")


def is_event_stream(headers: Mapping[str, str]) -> bool:
    return "text/event-stream" in (headers.get("content-type") or headers.get("Content-Type") or "")
