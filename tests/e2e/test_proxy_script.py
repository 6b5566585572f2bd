"""The newcomer's path: ``bash scripts/proxy.sh`` starts the emulator and the proxy with the shipped config,
lists every model group it serves, warns about no working deployment, and the curl and OpenAI SDK lines it
prints work as printed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from .proxy_process import ROOT, free_port


def test_proxy_script_prints_working_calls(tmp_path):
    demo = tmp_path / "demo"
    env = {**os.environ, "LITELLM_ALIPAY_VENV": sys.prefix, "LITELLM_ALIPAY_NO_INSTALL": "1",  # has [proxy]
           "PROXY_PORT": str(free_port()),
           "EMULATOR_PORT": str(free_port()), "ALIPAY_DEMO_DIR": str(demo), "LITELLM_MASTER_KEY": "sk-newcomer-0001"}
    env.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)  # the script sets it itself
    proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "proxy.sh")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=tmp_path,
                            start_new_session=True, text=True)
    try:
        output, calls = [], {}
        for line in proc.stdout:  # bounded by the test timeout; the script exits on failure
            output.append(line)
            for kind in ("curl ", "python -c "):
                if line.startswith(kind):
                    calls[kind.strip()] = line.strip()
            if len(calls) == 2:
                break
        assert len(calls) == 2, "".join(output[-40:])
        text = "".join(output)
        assert "will fail every request" not in text, text  # the Ant Ling deployments work: no false alarm
        config = yaml.safe_load((ROOT / "config" / "litellm.yaml").read_text())
        groups = [entry["model_name"] for entry in config["model_list"]]
        listed = next(line for line in output if line.startswith("Models: ")).removeprefix("Models: ")
        assert listed.strip().split(", ") == groups
        curl = subprocess.run(["bash", "-c", calls["curl"]], capture_output=True, text=True, timeout=60)
        assert json.loads(curl.stdout)["choices"][0]["message"]["content"] == "You said: hello"
        sdk = subprocess.run(["bash", "-c", calls["python -c"]], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PATH": f"{Path(sys.prefix) / 'bin'}:{os.environ['PATH']}"})
        assert sdk.stdout.strip() == "You said: hello", sdk.stderr
        settings = dict(line.split("=", 1) for line in (demo / "env").read_text().splitlines())
        for name in ("ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY"):
            assert Path(settings[name]).is_absolute() and Path(settings[name]).is_file()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
