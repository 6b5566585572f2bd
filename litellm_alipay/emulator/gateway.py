"""``POST /gateway.do``: the v2 gateway (PROTOCOL A2-A6, A8, A9; B1-B5) with fault injection.

Checks run in the real gateway's order of concern: who is calling (app_id), is it really them
(certificate SNs, sign type, signature), is the request fresh (timestamp), what do they want
(method), may they (quota), then the method itself. Gateway-level refusals come back as a signed
``error_response``; method-level ones (biz_content, auth_token, AI codes, throttling) in the signed
method node.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from ..errors import SignatureError
from ..payments import wire as payment_wire
from ..payments.agent import delegation_wire
from ..wire import protocol
from ..wire.signing import BEIJING, aes_decrypt, aes_encrypt, parse_beijing_timestamp, verify_params
from . import a2m
from .config import AppConfig, FaultRule
from .core import KNOWN_METHODS, Emulator, Refusal, dumps, invalid
from .responses import EventStreamResponse, RawResponse, plain, sleep_unless_disconnected

_ERROR = "error"  # marks a node that goes out as error_response
_ACQ_SYSTEM_ERROR = {"code": "20000", "msg": "Service Currently Unavailable", "sub_code": "ACQ.SYSTEM_ERROR",
                     "sub_msg": "系统错误，请使用相同的参数再次调用"}


def _parse(raw: bytes, charset: str) -> list[tuple[str, str]]:
    return parse_qsl(raw.decode("latin-1"), keep_blank_values=True, encoding=charset, errors="strict")


def parse_params(query: bytes, body: bytes) -> dict[str, str]:
    """Query and form body merged (query wins), decoded with the request's own ``charset``."""
    pairs = _parse(query, "utf-8") + _parse(body, "utf-8")
    charset = next((v for k, v in pairs if k == "charset"), "utf-8") or "utf-8"
    if charset.lower().replace("-", "") != "utf8":
        pairs = _parse(query, charset) + _parse(body, charset)
    params: dict[str, str] = {}
    for key, value in pairs:
        params.setdefault(key, value)
    return params


class Gateway:
    """The v2 front end over the shared ``Emulator`` core."""

    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator

    # ------------------------------------------------------------------------------- envelopes
    def _respond(
        self, method: str, node: dict[str, Any] | str, app: AppConfig | None, *, error: bool = False,
        status: int = 200, fault: FaultRule | None = None,
    ) -> RawResponse:
        """Sign the node text exactly as sent (A4); certificate-mode apps also get alipay_cert_sn."""
        text = node if isinstance(node, str) else dumps(node)
        sign_type = app.sign_type if app else "RSA2"
        corrupt = fault is not None and fault.kind == "bad_signature"
        sign = self.emu.sign(text.encode("utf-8"), sign_type, corrupt)
        cert_sn = self.emu.config.alipay_cert_sn if app is not None and app.cert_mode else None
        body = protocol.node_body(method, text, sign, error=error, cert_sn=cert_sn)
        delivery = fault.kind if fault is not None and fault.kind in ("truncate", "drop",
                                                                      "drop_after_actions") else None
        if delivery == "drop_after_actions":
            delivery = "drop"
        return RawResponse(status, body.encode("utf-8"), fault=delivery)

    def _refuse(self, method: str, refusal: Refusal, app: AppConfig | None, *, error: bool,
                status: int = 200) -> RawResponse:
        self.emu.state.stats.reject(refusal.sub_code)
        return self._respond(method or "error", refusal.node(), app, error=error, status=status)

    # ---------------------------------------------------------------------------------- checks
    def _authenticate(self, params: dict[str, str]) -> AppConfig:
        """Raise a gateway-level ``Refusal`` (error_response) unless the request is authentic."""
        cfg = self.emu.config
        app_id = params.get("app_id")
        if not app_id:
            raise invalid("isv.missing-app-id", "app_id is required", "40001")
        app = cfg.apps.get(app_id)
        if app is None:
            raise invalid("isv.invalid-app-id", "app_id is not registered")
        if not params.get("method"):
            raise invalid("isv.missing-method", "method is required", "40001")
        if not params.get("sign"):
            raise invalid("isv.missing-signature", "sign is required", "40001")
        sign_type = params.get("sign_type")
        if not sign_type:
            raise invalid("isv.missing-signature-type", "sign_type is required", "40001")
        if sign_type != app.sign_type:
            raise invalid("isv.invalid-signature-type", f"this app signs with {app.sign_type}")
        if app.cert_mode:
            if not params.get("app_cert_sn"):
                raise invalid("isv.missing-app-cert-sn", "app_cert_sn is required", "40001")
            if params["app_cert_sn"] != app.app_cert_sn:
                raise invalid("isv.invalid-app-cert-sn", "app_cert_sn does not match the app's certificate")
            if not params.get("alipay_root_cert_sn"):
                raise invalid("isv.missing-alipay-root-cert-sn", "alipay_root_cert_sn is required", "40001")
            if cfg.alipay_root_cert_sn and params["alipay_root_cert_sn"] != cfg.alipay_root_cert_sn:
                raise invalid("isv.invalid-alipay-root-cert-sn", "alipay_root_cert_sn does not match")
        if not verify_params(params, app.public_key):
            raise invalid("isv.invalid-signature", "the request signature does not verify")
        timestamp = params.get("timestamp")
        if not timestamp:
            raise invalid("isv.missing-timestamp", "timestamp is required", "40001")
        try:
            sent = parse_beijing_timestamp(timestamp)
        except ValueError:
            raise invalid("isv.invalid-timestamp", "timestamp must be yyyy-MM-dd HH:mm:ss") from None
        if abs((datetime.now(BEIJING) - sent).total_seconds()) > cfg.timestamp_tolerance_seconds:
            raise invalid("isv.invalid-timestamp", "timestamp is too far from Beijing time")
        if params["method"] not in KNOWN_METHODS:
            raise invalid("isv.invalid-method", "method does not exist")
        return app

    def _biz(self, params: dict[str, str], app: AppConfig) -> Any:
        raw = params.get("biz_content")
        if raw is None or not raw.strip():
            raise Refusal("40002", "AI.INVALID_REQUEST", "biz_content is required")
        if params.get("encrypt_type"):
            if params["encrypt_type"] != "AES" or not app.encrypt_key:
                raise invalid("isv.invalid-encrypt-type", "this app has no AES key configured")
            try:
                raw = aes_decrypt(raw, app.encrypt_key, params.get("charset") or "utf-8")
            except SignatureError:
                raise invalid("isv.decryption-error", "biz_content cannot be decrypted") from None
        try:
            biz = json.loads(raw)
        except ValueError:
            raise Refusal("40002", "AI.INVALID_REQUEST", "biz_content is not JSON") from None
        if not isinstance(biz, dict):
            raise Refusal("40002", "AI.INVALID_REQUEST", "biz_content must be a JSON object")
        return biz

    # --------------------------------------------------------------------------------- handler
    async def handle(self, request: Request) -> Any:
        emu = self.emu
        state = emu.state
        body = await request.body()
        state.request_no += 1
        request_no = state.request_no
        try:
            params = parse_params(request.scope.get("query_string", b""), body)
        except (UnicodeDecodeError, LookupError):
            params = {}
        method = params.get("method", "")
        state.stats.request(params.get("app_id", "-"), method or "-")
        try:
            app = self._authenticate(params)
        except Refusal as refusal:
            app = emu.config.apps.get(params.get("app_id", ""))
            return self._refuse(method, refusal, app, error=True)

        if not state.quotas.admit(app.app_id, app.quota):
            refusal = Refusal("40004", "AI.RATE_LIMITED", "quota exceeded, retry later")
            return self._refuse(method, refusal, app, error=False, status=429)

        biz_needed = method != protocol.METHOD_OAUTH
        stream = False
        if biz_needed:
            try:
                biz = self._biz(params, app)
            except Refusal as refusal:
                return self._refuse(method, refusal, app, error=False)
            stream = method == protocol.METHOD_CHAT and biz.get("stream") is True

        fault = emu.faults.pick(request_no, method, app.app_id, stream)
        if fault is not None:
            state.stats.faults[fault.kind] += 1
            early = await self._early_fault(fault, method, app, request)
            if early is not None:
                return early

        try:
            if method in payment_wire.SERVER_METHODS or method in delegation_wire.SERVER_METHODS:
                return await self._run_trade(method, app, biz, params, fault, request)
            if method in a2m.METHODS:  # A2M pay-per-use (emulator/a2m.py)
                state.stats.successes += 1
                return self._respond(method, emu.a2m.run(method, app.app_id, biz, fault), app, fault=fault)
            if method == protocol.METHOD_OAUTH:
                node: dict[str, Any] = emu.run_oauth(app.app_id, params)
            else:
                emu.check_auth_token(app.app_id, params.get("auth_token"), app.require_auth_token)
                result = self.run_ai(method, app, biz, stream, fault)
                if isinstance(result, EventStreamResponse):
                    return result
                node = result
        except Refusal as refusal:
            state.stats.reject(refusal.sub_code)
            return self._respond(method, refusal.node(emu.trace_id()), app, fault=fault)
        state.stats.successes += 1
        if params.get("encrypt_type") == "AES" and app.encrypt_key:
            cipher = aes_encrypt(dumps(node), app.encrypt_key, params.get("charset") or "utf-8")
            return self._respond(method, json.dumps(cipher), app, fault=fault)
        return self._respond(method, node, app, fault=fault)

    async def _run_trade(self, method: str, app: AppConfig, biz: dict[str, Any], params: dict[str, str],
                         fault: FaultRule | None, request: Request) -> RawResponse:
        """A trade method, then the faults that strike after it executed: the answer replaced by
        ``ACQ.SYSTEM_ERROR``, or held past the client's timeout ("committed, answer lost")."""
        book = self.emu.delegations if method in delegation_wire.SERVER_METHODS else self.emu.trades
        node = book.run(method, app.app_id, biz, params)
        self.emu.state.stats.successes += 1
        kind = fault.kind if fault is not None else None
        if kind == "acq_system_error_after":
            node = dict(_ACQ_SYSTEM_ERROR)
        elif kind == "stall_after_actions" and await sleep_unless_disconnected(request.receive, fault.seconds):
            return RawResponse(499, b"", fault="drop")
        return self._respond(method, node, app, fault=fault)

    def run_ai(self, method: str, app: AppConfig, biz: dict[str, Any], stream: bool,
               fault: FaultRule | None) -> dict[str, Any] | EventStreamResponse:
        """Run an AI method for either protocol: the result node, or the signed event stream of a
        streamed chat (counted as a success here, since it is answered at once). Raises ``Refusal``."""
        if method == protocol.METHOD_EMBED:
            return self.emu.run_embed(biz)
        answer = self.emu.run_chat(app.app_id, biz)
        if stream:
            self.emu.state.stats.successes += 1
            return self._stream(answer, app, fault)
        return answer.node()

    async def _early_fault(
        self, fault: FaultRule, method: str, app: AppConfig, request: Request
    ) -> RawResponse | None:
        """Faults decided before anything runs; latency/stall sleep here and fall through."""
        kind = fault.kind
        if kind == "acq_system_error":
            return self._respond(method, dict(_ACQ_SYSTEM_ERROR), app)
        if kind == "system_error":
            refusal = Refusal("20000", "SYSTEM_ERROR", "system busy, outcome unknown")
            return self._respond(method, refusal.node(self.emu.trace_id()), app)
        if kind == "http_5xx":
            return plain(fault.status, "Service Unavailable")
        if kind == "rate_limit":
            return self._respond(
                method, Refusal("40004", "AI.RATE_LIMITED", "quota exceeded, retry later").node(), app,
                status=429,
            )
        if kind == "drop":
            return RawResponse(200, b"", fault="drop")
        if kind in ("latency", "stall"):
            if await sleep_unless_disconnected(request.receive, fault.seconds):
                self.emu.state.stats.abandoned += 1  # client gone: nothing executed
                return RawResponse(499, b"", fault="drop")
        return None

    def _stream(self, answer: Any, app: AppConfig, fault: FaultRule | None) -> EventStreamResponse:
        """B3 events: chunks, then ``event: sign`` over every earlier data payload."""
        datas = answer.chunks()
        kind = fault.kind if fault is not None else None
        if kind == "trickle":
            return EventStreamResponse([protocol.sse_event(datas[0])], fault="trickle",
                                       interval=fault.seconds or 0.2)
        if kind == "stream_error":
            err = Refusal("20000", "SYSTEM_ERROR", "the stream failed after it began").node()
            datas = datas[:1]
            events = [protocol.sse_event(datas[0]), protocol.sse_event(dumps(err), "error")]
            signed = [datas[0], dumps(err)]
        else:
            events = [protocol.sse_event(d) for d in datas]
            signed = datas
        if kind != "cut_stream":
            sign = self.emu.sign(protocol.stream_sign_content(signed), app.sign_type, kind == "bad_signature")
            sign_data: dict[str, Any] = {"sign": sign, "sign_type": app.sign_type}
            if app.cert_mode and self.emu.config.alipay_cert_sn:
                sign_data["alipay_cert_sn"] = self.emu.config.alipay_cert_sn
            events.append(protocol.sse_event(dumps(sign_data), "sign"))
        delivery = {"truncate": "truncate", "drop_after_actions": "drop"}.get(kind or "")
        return EventStreamResponse(events, fault=delivery)
