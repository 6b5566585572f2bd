"""v3 REST (A7): header auth, nonce replay, header-signed responses, real HTTP error statuses."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from litellm_alipay.emulator.process import EmulatorProcess
from litellm_alipay.wire import protocol
from litellm_alipay.wire.signing import (
    cert_sn,
    generate_private_key,
    load_private_key,
    load_public_key,
    v3_authorization,
    v3_verify,
)

CHAT_PATH = protocol.V3_PATHS[protocol.METHOD_CHAT]
EMBED_PATH = protocol.V3_PATHS[protocol.METHOD_EMBED]


def _post(emu: EmulatorProcess, path: str, payload: dict, *, key=None, app_id=None, **auth) -> httpx.Response:
    body = json.dumps(payload)
    header = v3_authorization(app_id or emu.app_id, "POST", path, body,
                              key or load_private_key(emu.app_private_key), **auth)
    return httpx.post(emu.base_url + path, content=body,
                      headers={"authorization": header, "content-type": "application/json"})


def _verified(emu: EmulatorProcess, resp: httpx.Response) -> dict:
    h = resp.headers
    assert v3_verify(h["alipay-timestamp"], h["alipay-nonce"], resp.content, h["alipay-signature"],
                     load_public_key(emu.alipay_public_key))
    assert h["alipay-sn"] == cert_sn(open(emu.alipay_cert_path).read())
    return resp.json()


def test_chat_and_embed(alipay_emulator: EmulatorProcess) -> None:
    resp = _post(alipay_emulator, CHAT_PATH, {"model": "ant-fin-chat", "messages": [{"role": "user", "content": "v3"}]})
    assert resp.status_code == 200
    body = _verified(alipay_emulator, resp)
    assert body["choices"][0]["message"]["content"] == "You said: v3" and "code" not in body
    resp = _post(alipay_emulator, EMBED_PATH, {"model": "ant-fin-embed", "input": ["x"]})
    assert len(_verified(alipay_emulator, resp)["data"][0]["embedding"]) == 256


def test_cert_app(alipay_emulator: EmulatorProcess) -> None:
    sn = cert_sn(open(alipay_emulator.app_cert_path).read())
    resp = _post(alipay_emulator, CHAT_PATH, {"model": "ant-fin-chat", "messages": [{"role": "user", "content": "c"}]},
                 app_id=alipay_emulator.cert_app_id, app_cert_sn=sn)
    assert _verified(alipay_emulator, resp)["model"] == "ant-fin-chat"
    resp = _post(alipay_emulator, CHAT_PATH, {"model": "ant-fin-chat", "messages": []},
                 app_id=alipay_emulator.cert_app_id)
    assert (resp.status_code, resp.json()["code"]) == (401, "invalid-app-cert-sn")


def test_nonce_replay_rejected(alipay_emulator: EmulatorProcess) -> None:
    payload = {"model": "ant-fin-chat", "messages": [{"role": "user", "content": "once"}]}
    first = _post(alipay_emulator, CHAT_PATH, payload, nonce="fixed-nonce-1")
    assert first.status_code == 200
    again = _post(alipay_emulator, CHAT_PATH, payload, nonce="fixed-nonce-1")
    assert again.status_code == 401
    assert _verified(alipay_emulator, again)["code"] == "invalid-nonce"


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"key": "wrong"}, 401, "invalid-signature"),
        ({"app_id": "2021999999999999"}, 401, "invalid-app-id"),
        ({"timestamp_ms": int(time.time() * 1000) - 3_600_000}, 401, "invalid-timestamp"),
    ],
)
def test_auth_rejections(alipay_emulator: EmulatorProcess, kwargs: dict, status: int, code: str) -> None:
    if kwargs.get("key") == "wrong":
        kwargs["key"] = generate_private_key()
    resp = _post(alipay_emulator, CHAT_PATH, {"model": "ant-fin-chat", "messages": []}, **kwargs)
    assert resp.status_code == status
    body = _verified(alipay_emulator, resp)
    assert body["code"] == code and body["message"]


def test_missing_or_malformed_authorization(alipay_emulator: EmulatorProcess) -> None:
    resp = httpx.post(alipay_emulator.base_url + CHAT_PATH, content=b"{}")
    assert (resp.status_code, resp.json()["code"]) == (401, "missing-authorization")
    resp = httpx.post(alipay_emulator.base_url + CHAT_PATH, content=b"{}", headers={"authorization": "Basic x"})
    assert (resp.status_code, resp.json()["code"]) == (401, "invalid-authorization")


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"model": "nope", "messages": [{"role": "user", "content": "x"}]}, 404, "AI.MODEL_NOT_FOUND"),
        ({"model": "ant-fin-chat", "messages": [{"role": "user", "content": "predict my income"}]}, 403,
         "AI.COMPLIANCE_REJECTED"),
        ({"model": "ant-fin-chat", "messages": "x"}, 400, "AI.INVALID_REQUEST"),
    ],
)
def test_business_errors_use_http_statuses(alipay_emulator: EmulatorProcess, payload: dict, status: int,
                                           code: str) -> None:
    resp = _post(alipay_emulator, CHAT_PATH, payload)
    assert resp.status_code == status
    assert _verified(alipay_emulator, resp)["code"] == code


def test_v3_faults(alipay_emulator: EmulatorProcess) -> None:
    alipay_emulator.set_faults([{"kind": "system_error", "next": 1}, {"kind": "bad_signature", "next": 1}])
    payload = {"model": "ant-fin-chat", "messages": [{"role": "user", "content": "x"}]}
    resp = _post(alipay_emulator, CHAT_PATH, payload)
    assert (resp.status_code, _verified(alipay_emulator, resp)["code"]) == (500, "SYSTEM_ERROR")
    resp = _post(alipay_emulator, CHAT_PATH, payload)
    h = resp.headers
    assert resp.status_code == 200
    assert not v3_verify(h["alipay-timestamp"], h["alipay-nonce"], resp.content, h["alipay-signature"],
                         load_public_key(alipay_emulator.alipay_public_key))
