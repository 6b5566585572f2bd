"""A throw-away ``redis-server`` on 127.0.0.1 for the limiter benchmark.

Why a copy of ``tests/redis_server.py`` instead of an import: that module imports pytest and lives on
the tests' import path; the benchmark must run from a plain ``python -m bench`` without either.
The logic is the same: free loopback port, persistence off, readiness by polling PING (bounded).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

READY_DEADLINE_S = 10.0
PORT_ATTEMPTS = 5


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """``with RedisServer() as url:`` — a real server (the limiter is a Lua script; a fake proves nothing)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found on PATH (apt-get install redis-server)")
        self._workdir = tempfile.TemporaryDirectory(prefix="redis-bench-")
        last = ""
        for _ in range(PORT_ATTEMPTS):
            self.port = _free_port()
            self.process = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", self._workdir.name, "--loglevel", "warning"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )
            deadline = time.monotonic() + READY_DEADLINE_S
            while time.monotonic() < deadline:
                if self.process.poll() is not None:  # lost the port race: try another port
                    break
                if _ping(self.port):
                    return self.url
                time.sleep(0.02)  # polling interval of a bounded readiness loop
            last = self._stop_and_read()
        raise RuntimeError(f"redis-server did not become ready on 127.0.0.1: {last[-2000:]}")

    def _stop_and_read(self) -> str:
        process, self.process = self.process, None
        if process is None:
            return ""
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        out = process.stdout.read() if process.stdout else b""
        if process.stdout:
            process.stdout.close()
        return out.decode(errors="replace")

    def stop(self) -> None:
        self._stop_and_read()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
