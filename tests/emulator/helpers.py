"""Client side of the tests: requests built and signed with litellm_alipay.wire.protocol + signing, and
responses checked with verify_response, so the protocol code runs in both directions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from litellm_alipay.emulator.process import EmulatorProcess
from litellm_alipay.wire import protocol
from litellm_alipay.wire.signing import (
    CertKeyRing,
    cert_sn,
    load_private_key,
    load_public_key,
    root_cert_sn,
    verify_response,
)

CHAT = protocol.METHOD_CHAT
EMBED = protocol.METHOD_EMBED
OAUTH = protocol.METHOD_OAUTH


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def chat_biz(text: str, model: str = "ant-fin-chat", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": user(text), **extra}


class Client:
    """A minimal, honest v2 client for one emulator app."""

    def __init__(self, emu: EmulatorProcess, *, cert: bool = False, key: Any = None,
                 app_id: str | None = None) -> None:
        self.emu = emu
        self.cert = cert
        self.app_id = app_id or (emu.cert_app_id if cert else emu.app_id)
        self.key = key if key is not None else load_private_key(emu.app_private_key)
        self.alipay_public = load_public_key(emu.alipay_public_key)
        self.ring = CertKeyRing([Path(emu.alipay_cert_path).read_text()])
        self.http = httpx.Client(timeout=30)

    def params(self, method: str, biz: Any = None, **extra: str | None) -> dict[str, str]:
        if self.cert:
            extra.setdefault("app_cert_sn", cert_sn(Path(self.emu.app_cert_path).read_text()))
            extra.setdefault("alipay_root_cert_sn", root_cert_sn(Path(self.emu.alipay_root_cert_path).read_text()))
        return protocol.common_params(self.app_id, method, biz, **extra)

    def post(self, params: dict[str, str], sign: bool = True, **kw: Any) -> httpx.Response:
        signed = protocol.sign_request(params, self.key) if sign else params
        query, body = protocol.encode_request(signed)
        return self.http.post(
            f"{self.emu.gateway_url}?{query}", content=body,
            headers={"content-type": protocol.form_content_type("utf-8")}, **kw,
        )

    def verify(self, method: str, resp: httpx.Response) -> dict[str, Any]:
        key = self.ring if self.cert else self.alipay_public
        return verify_response(resp.content, method, key)

    def call(self, method: str, biz: Any = None, **extra: str | None) -> tuple[httpx.Response, dict[str, Any]]:
        resp = self.post(self.params(method, biz, **extra))
        return resp, self.verify(method, resp)

    def chat(self, text: str, **extra: Any) -> dict[str, Any]:
        resp, node = self.call(CHAT, chat_biz(text, **extra))
        assert resp.status_code == 200
        return node

    def close(self) -> None:
        self.http.close()


def error_node(resp: httpx.Response) -> dict[str, Any]:
    return json.loads(resp.content)["error_response"]
