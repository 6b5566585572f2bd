"""Start the real ``litellm`` proxy as a subprocess on loopback and wait until it serves."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MASTER_KEY = "sk-test-litellm-alipay-0001"
#: The emulator's settings a key-mode Alipay deployment reads (not the ALIPAY_CERT_* ones).
CLIENT_SETTINGS = ("ALIPAY_APP_ID", "ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY", "ALIPAY_GATEWAY_URL")


def proxy_env(emulator, **extra: str) -> dict[str, str]:
    """What the shipped configs read: the key-mode app, the regional model (the emulator's /v1), extras."""
    settings = emulator.env()
    return {**{name: settings[name] for name in CLIENT_SETTINGS},
            "REGIONAL_API_BASE": emulator.base_url + "/v1", "REGIONAL_API_KEY": "unused",
            "ANT_LING_API_BASE": emulator.ant_ling_base, "ANT_LING_API_KEY": emulator.ant_ling_api_key, **extra}


def openai_client(proxy: ProxyProcess):
    """The official OpenAI SDK pointed at a proxy, with no retries of its own."""
    import openai

    return openai.OpenAI(base_url=proxy.base_url, api_key=MASTER_KEY, max_retries=0, timeout=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ProxyProcess:
    """``litellm --config …`` with the given environment; ``base_url`` once Uvicorn reports it runs."""

    def __init__(self, config: Path, env: Mapping[str, str], timeout: float = 120.0) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        litellm_bin = Path(sys.executable).with_name("litellm")
        full_env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MASTER_KEY": MASTER_KEY,
                    "PYTHONUNBUFFERED": "1", **env}
        self.proc = subprocess.Popen(
            [str(litellm_bin), "--config", str(config), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=full_env,
            cwd=str(ROOT),
        )
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._wait(timeout)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace")
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise RuntimeError("litellm proxy did not start:\n" + "".join(self.output[-40:]))
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError("litellm proxy exited:\n" + "".join(self.output[-40:]))
            if "Uvicorn running on" in line or "Application startup complete" in line:
                return

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
