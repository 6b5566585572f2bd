"""The command line: `litellm-alipay emulator --demo`, single-app flags, config errors, fast import."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

import httpx

from litellm_alipay.wire.signing import generate_private_key, private_key_forms

from .helpers import Client, chat_biz

READY = "alipay emulator ready on "


def _start(args: list[str]) -> tuple[subprocess.Popen, list[str]]:
    """Start and read stdout up to the ready line, bounded by a deadline (no sleeps)."""
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    lines: list[str] = []
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 30
    while not (lines and lines[-1].startswith(READY)):
        assert sel.select(max(0.0, deadline - time.monotonic())), "no ready line in time"
        line = proc.stdout.readline().decode()
        assert line, f"exited: {proc.wait()} {proc.stderr.read().decode() if proc.stderr else ''}"
        lines.append(line.rstrip("\n"))
    sel.close()
    return proc, lines


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(10)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def test_demo_prints_settings_and_one_ready_line(tmp_path: Path) -> None:
    env_file = tmp_path / "emulator.env"
    proc, lines = _start(["-m", "litellm_alipay.cli", "emulator", "--demo", "--port", "0",
                          "--keys-dir", str(tmp_path / "keys"), "--env-file", str(env_file)])
    try:
        ready = [line for line in lines if line.startswith(READY)]
        assert len(ready) == 1
        base_url = ready[0][len(READY):]
        assert base_url.startswith("http://127.0.0.1:") and not base_url.endswith(":0")
        settings = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert settings["ALIPAY_GATEWAY_URL"] == f"{base_url}/gateway.do"
        for name in ("ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY", "ALIPAY_CERT_APP_CERT", "ALIPAY_CERT_PUBLIC_CERT",
                     "ALIPAY_CERT_ROOT_CERT"):
            assert Path(settings[name]).is_file()
        assert settings["ALIPAY_APP_ID"] != settings["ALIPAY_CERT_APP_ID"]
        assert "PRIVATE KEY" not in "\n".join(lines)  # paths only, never key text
        assert httpx.get(f"{base_url}/_admin/health").json()["ok"] is True
    finally:
        _stop(proc)


def test_single_app_flags(tmp_path: Path) -> None:
    app_key, alipay_key = generate_private_key(), generate_private_key()
    (tmp_path / "app.pub").write_text(private_key_forms(app_key)["public"])  # bare base64
    (tmp_path / "alipay.pem").write_text(private_key_forms(alipay_key)["private_pem"])
    proc, lines = _start(["-m", "litellm_alipay.emulator", "--port", "0", "--app-id", "2021000000009999",
                          "--app-public-key", str(tmp_path / "app.pub"),
                          "--alipay-private-key", str(tmp_path / "alipay.pem")])
    try:
        base_url = lines[-1][len(READY):]

        class _Handle:  # what Client needs from an emulator handle
            gateway_url = f"{base_url}/gateway.do"
            app_id = "2021000000009999"
            alipay_public_key = private_key_forms(alipay_key)["public_pem"]
            app_private_key = private_key_forms(app_key)["private_pem"]
            alipay_cert_path = None

        client = Client.__new__(Client)
        client.emu, client.cert, client.app_id, client.key = _Handle, False, _Handle.app_id, app_key
        client.alipay_public = alipay_key.public_key()
        client.http = httpx.Client()
        resp = client.post(client.params("alipay.cloud.ai.chat", chat_biz("flags")))
        assert client.verify("alipay.cloud.ai.chat", resp)["choices"][0]["message"]["content"] == "You said: flags"
        client.close()
    finally:
        _stop(proc)


def test_config_error_names_the_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("apps:\n  - app_id: '1'\n    app_public_key: nowhere.pem\n    quota: {per_second: 0}\n")
    result = subprocess.run([sys.executable, "-m", "litellm_alipay.emulator", "--demo", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "apps[0].app_public_key" in result.stderr
    config.write_text("faults:\n  - kind: drop\n    seconds: -1\n")
    result = subprocess.run([sys.executable, "-m", "litellm_alipay.emulator", "--demo", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "faults[0].seconds" in result.stderr


def test_emulator_does_not_import_litellm() -> None:
    code = ("import sys, litellm_alipay.emulator.server, litellm_alipay.emulator.app, "
            "litellm_alipay.emulator.process; print('litellm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_demo_keys_paths_are_absolute_from_a_relative_keys_dir(tmp_path: Path, monkeypatch) -> None:
    """`.demo/env` must work from any working directory (``check``, the proxy started elsewhere)."""
    from litellm_alipay.emulator.demo_keys import write_demo_keys

    monkeypatch.chdir(tmp_path)
    settings = write_demo_keys(Path(".demo") / "keys").settings("http://127.0.0.1:1/gateway.do")
    for name in ("ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY", "ALIPAY_CERT_ROOT_CERT"):
        assert Path(settings[name]).is_absolute()
        assert Path(settings[name]) == tmp_path / ".demo" / "keys" / Path(settings[name]).name
