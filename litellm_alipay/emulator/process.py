"""``EmulatorProcess``: the emulator in a subprocess, for tests, benchmarks and users' own suites.

A subprocess, not a thread: the client under test gets its own event loop and GIL, the emulator can
be killed mid-request, and what is measured is real loopback HTTP. Start-up waits for the ready
line on stdout (bounded by ``timeout``), never for a fixed sleep.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .ant_ling import DEMO_API_KEY as ANT_LING_DEMO_KEY
from .config import FaultRule
from .server import ADMIN_TOKEN_ENV, READY


class EmulatorError(RuntimeError):
    """The emulator did not start or an admin call failed."""


class EmulatorProcess:
    """``python -m litellm_alipay.emulator --demo --port 0`` with its settings and admin calls."""

    def __init__(
        self, config: str | os.PathLike[str] | Mapping[str, Any] | None = None, *,
        timeout: float = 30.0, keys_dir: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (), admin_token: str | None = None,
    ) -> None:
        self._admin_token = admin_token
        self._tmp = tempfile.TemporaryDirectory(prefix="alipay-emulator-")
        self.keys_dir = Path(keys_dir) if keys_dir else Path(self._tmp.name) / "keys"
        args = [sys.executable, "-m", "litellm_alipay.emulator", "--demo", "--port", "0",
                "--keys-dir", str(self.keys_dir), *extra_args]
        if config is not None:
            if isinstance(config, Mapping):
                path = Path(self._tmp.name) / "config.yaml"
                path.write_text(json.dumps(config))  # JSON is YAML
                config = path
            args += ["--config", str(config)]
        self._stderr_path = Path(self._tmp.name) / "stderr.log"
        self._stderr = open(self._stderr_path, "wb")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if admin_token:
            env[ADMIN_TOKEN_ENV] = admin_token  # the environment, not argv: ps shows argv
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL, env=env,
        )
        self.settings: dict[str, str] = {}
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.base_url = self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        s = self.settings
        self.gateway_url = f"{self.base_url}/gateway.do"
        self.app_id = s["ALIPAY_APP_ID"]
        self.app_private_key_path = s["ALIPAY_APP_PRIVATE_KEY"]
        self.app_private_key = Path(self.app_private_key_path).read_text()
        self.alipay_public_key_path = s["ALIPAY_PUBLIC_KEY"]
        self.alipay_public_key = Path(self.alipay_public_key_path).read_text()
        self.cert_app_id = s["ALIPAY_CERT_APP_ID"]
        self.app_cert_path = s["ALIPAY_CERT_APP_CERT"]
        self.alipay_cert_path = s["ALIPAY_CERT_PUBLIC_CERT"]
        self.alipay_root_cert_path = s["ALIPAY_CERT_ROOT_CERT"]
        #: Ant Ling's emulated endpoint (``ant_ling.py``) and its public demo key
        self.ant_ling_base = f"{self.base_url}/ant-ling/v1"
        self.ant_ling_api_key = ANT_LING_DEMO_KEY

    # ------------------------------------------------------------------------------- lifecycle
    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self._lines.put(None)

    def _wait_ready(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EmulatorError(f"emulator not ready after {timeout} s{self._stderr_tail()}")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise EmulatorError(f"emulator exited with {self.proc.wait()}{self._stderr_tail()}")
            if line.startswith(READY):
                return line[len(READY):].strip()
            key, sep, value = line.partition("=")
            if sep and key.startswith("ALIPAY_"):
                self.settings[key] = value

    def _stderr_tail(self) -> str:
        try:
            self._stderr.flush()
            tail = self._stderr_path.read_text(errors="replace")[-2000:]
        except (OSError, ValueError):
            return ""
        return f":\n{tail}" if tail.strip() else ""

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the process (kill if it does not exit) and remove its temporary files."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()
        self._tmp.cleanup()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------ client side
    def env(self) -> dict[str, str]:
        """The ``ALIPAY_*`` settings a client needs (paths, ids, URLs; no key text)."""
        return dict(self.settings)

    def _admin(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        headers = {"content-type": "application/json"}
        if self._admin_token:
            headers["authorization"] = f"Bearer {self._admin_token}"
        req = urllib.request.Request(f"{self.base_url}/_admin/{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read())
        except OSError as exc:
            raise EmulatorError(f"admin {method} {path} failed: {exc}") from None

    def set_faults(self, rules: Sequence[Mapping[str, Any] | FaultRule], append: bool = False) -> list[dict]:
        """Replace (or extend) the fault rules; see ``faults.py`` for the kinds."""
        payload = [r.to_dict() if isinstance(r, FaultRule) else dict(r) for r in rules]
        return self._admin("POST", "faults", {"rules": payload, "append": append})["rules"]

    def clear_faults(self) -> None:
        self._admin("DELETE", "faults")

    def faults(self) -> list[dict[str, Any]]:
        return self._admin("GET", "faults")["rules"]

    def stats(self) -> dict[str, Any]:
        return self._admin("GET", "stats")

    def create_trade(self, out_trade_no: str, total_amount: str, **fields: Any) -> dict[str, Any]:
        """A trade (default TRADE_SUCCESS) for the demo app; answers it with its ``trade_no``."""
        return self._admin("POST", "trades", {"out_trade_no": out_trade_no, "total_amount": total_amount, **fields})

    def pay_trade(self, out_trade_no: str, **fields: Any) -> dict[str, Any]:
        """The buyer pays a WAIT_BUYER_PAY trade (a state change: notified)."""
        return self._admin("POST", "trades/pay", {"out_trade_no": out_trade_no, **fields})

    def trades(self) -> list[dict[str, Any]]:
        return self._admin("GET", "trades")["trades"]

    def approve_delegation(self, order_str: str, decision: str = "approve") -> dict[str, Any]:
        """The user answers a signed apply string in the (emulated) Alipay app."""
        return self._admin("POST", "delegations/approve", {"order_str": order_str, "decision": decision})

    def terminate_agreement(self, agreement_no: str) -> dict[str, Any]:
        """The user ends a delegation agreement in the Alipay app (``dut_user_unsign``)."""
        return self._admin("POST", "delegations/terminate", {"agreement_no": agreement_no})

    def set_delegation_gateway(self, url: str) -> None:
        """The demo app's application gateway, where the delegation notifications go."""
        self._admin("POST", "delegations/gateway", {"url": url})

    def advance_clock(self, seconds: float = 0, days: float = 0) -> dict[str, Any]:
        """Move the emulator's delegation clock forward (validity windows, prepay expiry)."""
        return self._admin("POST", "clock", {"advance_seconds": seconds, "advance_days": days})

    def ant_ling_received(self) -> list[dict[str, Any]]:
        """The request bodies the emulated Ant Ling endpoint received since the last reset, oldest first."""
        return self._admin("GET", "ant-ling/received")["received"]

    def reset(self) -> None:
        """Clear stats, faults, the idempotency store, nonces, tokens and quota windows."""
        self._admin("POST", "reset")
