"""CI: the installed wheel, used as a user would, from a directory outside the checkout.

Run with the python of a clean venv holding ``litellm_alipay-*.whl[proxy]``:
``python .ci/wheel_smoke.py <repository root> <work dir>``. Checks, in order:

1. ``litellm_alipay`` is imported from the venv's site-packages (not the checkout), with ``py.typed``, and
   its version is the distribution's;
2. ``litellm-alipay demo`` (what scripts/demo.sh runs) exits 0;
3. the README's ten-line example runs against the emulator;
4. the proxy: ``litellm-alipay emulator --demo`` and ``litellm --config <root>/config/litellm.yaml`` from this
   venv, then one chat call through the proxy with the OpenAI SDK answers the emulator's deterministic text.

Every wait is bounded; both servers are stopped at the end. Exit status 0 only when all passed.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, ready, proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode} before it was ready")
        if ready():
            return
        time.sleep(0.2)
    sys.exit(f"{what} was not ready within {seconds:.0f} s")


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).read()
        return True
    except OSError:
        return False


def _step(title: str) -> float:
    print(f"=== wheel: {title}", flush=True)
    return time.monotonic()


def main(root: Path, work: Path) -> None:
    os.chdir(work)
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    os.environ.update(env)

    _step("the installed package")
    import litellm_alipay

    where = Path(litellm_alipay.__file__).resolve()
    assert "site-packages" in where.parts and not where.is_relative_to(root / "litellm_alipay"), where
    assert (where.parent / "py.typed").is_file(), "py.typed is not in the wheel"
    assert litellm_alipay.__version__ == importlib.metadata.version("litellm-alipay")
    print(f"  litellm_alipay {litellm_alipay.__version__} from {where.parent}")

    started = _step("litellm-alipay demo")
    subprocess.run([str(BIN / "litellm-alipay"), "demo"], env=env, check=True, timeout=600)
    print(f"  demo passed in {time.monotonic() - started:.0f} s")

    keys, env_file = work / "keys", work / "emulator.env"
    emulator = subprocess.Popen([str(BIN / "litellm-alipay"), "emulator", "--demo", "--port", str(_free_port()),
                                 "--keys-dir", str(keys), "--env-file", str(env_file)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy = None
    try:
        _wait("the emulator", lambda: env_file.exists() and "ANT_LING_API_KEY=" in env_file.read_text(), emulator, 60)
        settings = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
        settings = {k.removeprefix("export ").strip(): v.strip().strip("'\"") for k, v in settings.items()}
        env.update(settings)

        _step("the README's ten-line example")
        readme = (root / "README.md").read_text(encoding="utf-8")
        example = re.search(r"## In ten lines\n+```python\n(.*?)```", readme, re.S)
        assert example, "README.md has no '## In ten lines' python block"
        out = subprocess.run([sys.executable, "-c", example.group(1)], env=env, check=True, timeout=300,
                             capture_output=True, text=True).stdout
        assert out.startswith("You said: "), out
        print(f"  printed {out.splitlines()[0]!r}")

        started = _step("litellm --config config/litellm.yaml, one chat call")
        port = _free_port()
        proxy_env = {**env, "REGIONAL_API_BASE": f"{settings['ALIPAY_EMULATOR_URL']}/v1", "REGIONAL_API_KEY": "unused",
                     "LITELLM_MASTER_KEY": "sk-wheel-smoke"}
        proxy = subprocess.Popen([str(BIN / "litellm"), "--config", str(root / "config" / "litellm.yaml"),
                                  "--host", "127.0.0.1", "--port", str(port)], env=proxy_env)
        _wait("the proxy", lambda: _answers(f"http://127.0.0.1:{port}/health/liveliness"), proxy, 180)
        import openai

        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}", api_key="sk-wheel-smoke", max_retries=0)
        reply = client.chat.completions.create(model="fin-chat", messages=[{"role": "user", "content": "hello"}])
        assert reply.choices[0].message.content == "You said: hello", reply
        print(f"  fin-chat answered {reply.choices[0].message.content!r} "
              f"({time.monotonic() - started:.0f} s with the proxy's start)")
    finally:
        for proc in (proxy, emulator):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    print("=== wheel: all passed")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve())
