"""``POST /v3/alipay/cloud/ai/{chat,embed}``: the v3 REST front end (PROTOCOL A7).

Requests authenticate with the ``Authorization`` header; a nonce is accepted once. Every response,
errors included, is signed in headers (``alipay-timestamp``, ``alipay-nonce``, ``alipay-signature``,
``alipay-sn``). Errors use real HTTP statuses with ``{"code", "message"}``.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from starlette.requests import Request

from ..wire import protocol
from ..wire.signing import parse_v3_authorization, rsa_verify, v3_response_signature, v3_sign_content
from .config import AppConfig, FaultRule
from .core import Emulator, Refusal, dumps
from .responses import EventStreamResponse, RawResponse, plain, sleep_unless_disconnected


class V3Error(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class V3Gateway:
    def __init__(self, emulator: Emulator, gateway: Any) -> None:
        self.emu = emulator
        self.gateway = gateway  # the v2 Gateway, for its stream builder

    def _respond(self, status: int, payload: dict[str, Any], fault: FaultRule | None = None) -> RawResponse:
        body = dumps(payload).encode("utf-8")
        ts, nonce = str(int(time.time() * 1000)), secrets.token_hex(16)
        sig = v3_response_signature(ts, nonce, body, self.emu.key)
        if fault is not None and fault.kind == "bad_signature":
            sig = self.emu.sign(body, corrupt=True)
        headers = [(b"alipay-timestamp", ts.encode()), (b"alipay-nonce", nonce.encode()),
                   (b"alipay-signature", sig.encode())]
        if self.emu.config.alipay_cert_sn:
            headers.append((b"alipay-sn", self.emu.config.alipay_cert_sn.encode()))
        kind = fault.kind if fault is not None else None
        delivery = {"truncate": "truncate", "drop": "drop", "drop_after_actions": "drop"}.get(kind or "")
        return RawResponse(status, body, headers, fault=delivery)

    def _error(self, exc: V3Error) -> RawResponse:
        self.emu.state.stats.reject(exc.code)
        return self._respond(exc.status, {"code": exc.code, "message": exc.message})

    def _authenticate(self, request: Request, body: bytes) -> AppConfig:
        cfg = self.emu.config
        header = request.headers.get("authorization")
        if not header:
            raise V3Error(401, "missing-authorization", "Authorization header is required")
        try:
            fields = parse_v3_authorization(header)
        except ValueError:
            raise V3Error(401, "invalid-authorization", "Authorization is not ALIPAY-SHA256withRSA") from None
        app = cfg.apps.get(fields.get("app_id", ""))
        if app is None:
            raise V3Error(401, "invalid-app-id", "app_id is not registered")
        if app.cert_mode and fields.get("app_cert_sn") != app.app_cert_sn:
            raise V3Error(401, "invalid-app-cert-sn", "app_cert_sn does not match the app's certificate")
        nonce = fields.get("nonce")
        if not nonce:
            raise V3Error(401, "missing-nonce", "nonce is required")
        try:
            sent_ms = int(fields.get("timestamp", ""))
        except ValueError:
            raise V3Error(401, "invalid-timestamp", "timestamp must be unix milliseconds") from None
        if abs(time.time() - sent_ms / 1000) > cfg.timestamp_tolerance_seconds:
            raise V3Error(401, "invalid-timestamp", "timestamp is too far from the gateway's clock")
        scope = request.scope
        uri = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        if scope.get("query_string"):
            uri += "?" + scope["query_string"].decode("latin-1")
        content = v3_sign_content(
            fields["auth"], "POST", uri, body, request.headers.get("alipay-app-auth-token")
        )
        if not rsa_verify(content, fields["sign"], app.public_key):
            raise V3Error(401, "invalid-signature", "the request signature does not verify")
        if not self.emu.state.nonces.claim(app.app_id, nonce):
            raise V3Error(401, "invalid-nonce", "nonce has already been used")
        return app

    async def handle(self, request: Request) -> Any:
        emu, state = self.emu, self.emu.state
        method = protocol.V3_METHODS[request.url.path]
        body = await request.body()
        state.request_no += 1
        request_no = state.request_no
        try:
            app = self._authenticate(request, body)
        except V3Error as exc:
            state.stats.request("-", method)
            return self._error(exc)
        state.stats.request(app.app_id, method)
        if not state.quotas.admit(app.app_id, app.quota):
            return self._error(V3Error(429, "AI.RATE_LIMITED", "quota exceeded, retry later"))
        try:
            biz = json.loads(body)
            if not isinstance(biz, dict):
                raise ValueError
        except ValueError:
            return self._error(V3Error(400, "AI.INVALID_REQUEST", "body must be a JSON object"))
        stream = method == protocol.METHOD_CHAT and biz.get("stream") is True
        fault = emu.faults.pick(request_no, method, app.app_id, stream)
        if fault is not None:
            state.stats.faults[fault.kind] += 1
            kind = fault.kind
            if kind == "system_error":
                return self._respond(500, {"code": "SYSTEM_ERROR", "message": "system busy, outcome unknown"})
            if kind == "http_5xx":
                return plain(fault.status, "Service Unavailable")
            if kind == "rate_limit":
                return self._respond(429, {"code": "AI.RATE_LIMITED", "message": "quota exceeded"})
            if kind == "drop":
                return RawResponse(200, b"", fault="drop")
            if kind in ("latency", "stall") and await sleep_unless_disconnected(request.receive, fault.seconds):
                state.stats.abandoned += 1  # client gone: nothing executed
                return RawResponse(499, b"", fault="drop")
        try:
            result = self.gateway.run_ai(method, app, biz, stream, fault)
            if isinstance(result, EventStreamResponse):
                return result
            node = result
        except Refusal as refusal:
            state.stats.reject(refusal.sub_code)
            return self._respond(refusal.http_status if refusal.http_status != 200 else 400,
                                 {"code": refusal.sub_code, "message": refusal.sub_msg}, fault)
        state.stats.successes += 1
        node.pop("code", None)
        node.pop("msg", None)
        return self._respond(200, node, fault)
