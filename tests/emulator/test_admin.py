"""The emulator's ``/_admin/*``: JSON only for changes (a web page cannot forge that cross-origin) and a
bearer token, required when the emulator listens beyond loopback."""

from __future__ import annotations

import httpx
import pytest

from litellm_alipay.emulator.process import EmulatorError, EmulatorProcess

RULES = {"rules": [{"kind": "system_error"}]}


def test_state_changes_take_json_only(alipay_emulator: EmulatorProcess) -> None:
    faults = f"{alipay_emulator.base_url}/_admin/faults"
    # What a web page can send cross-origin without a preflight: text/plain and form bodies.
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        resp = httpx.post(faults, content=b'{"rules": [{"kind": "system_error"}]}',
                          headers={"content-type": content_type})
        assert resp.status_code == 415 and "application/json" in resp.json()["error"]
    assert httpx.post(f"{alipay_emulator.base_url}/_admin/reset").status_code == 415  # no content type
    assert alipay_emulator.faults() == []  # nothing was injected
    assert httpx.post(faults, json=RULES).status_code == 200
    assert [r["kind"] for r in alipay_emulator.faults()] == ["system_error"]


def test_beyond_loopback_without_a_token_does_not_start() -> None:
    with pytest.raises(EmulatorError, match="admin_token.*--admin-token"):
        EmulatorProcess(extra_args=["--host", "0.0.0.0"], timeout=60)


def test_token_is_required_when_set() -> None:
    with EmulatorProcess(extra_args=["--host", "0.0.0.0"], admin_token="s3cret-admin", timeout=60) as emu:
        base = emu.base_url.replace("0.0.0.0", "127.0.0.1")
        assert httpx.get(f"{base}/_admin/health").status_code == 200  # liveness stays open
        assert httpx.get(f"{base}/_admin/stats").status_code == 401
        assert httpx.post(f"{base}/_admin/faults", json=RULES,
                          headers={"authorization": "Bearer wrong"}).status_code == 401
        assert emu.set_faults(RULES["rules"])[0]["kind"] == "system_error"  # the handle sends the token
        assert emu.stats()["active_faults"][0]["kind"] == "system_error"
        assert "s3cret-admin" not in " ".join(emu.proc.args)  # passed in the environment, not argv
