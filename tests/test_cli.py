"""The ``litellm-alipay`` command's first impression: ``--help`` lists every command without importing
LiteLLM (it took seconds and printed cost-map warnings offline), each command's own ``--help`` shows its
options, and every command runs with LiteLLM's local cost map unless the user chose otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from litellm_alipay.cli import COMMANDS, LOCAL_COST_MAP_ENV, main

PROBE = """
import json, sys
from litellm_alipay.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m == "litellm" or m.startswith("litellm.")
                        or m.startswith("litellm_alipay."))))
"""


def _probe(*argv: str) -> tuple[str, list[str], str]:
    env = {k: v for k, v in os.environ.items() if k != LOCAL_COST_MAP_ENV}
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    *shown, imported = done.stdout.rstrip("\n").split("\n")
    return "\n".join(shown), json.loads(imported), done.stderr


def test_help_lists_every_command_and_imports_neither_litellm_nor_the_commands():
    shown, imported, stderr = _probe("--help")
    for name, (_, _, line) in COMMANDS.items():
        assert name in shown and " ".join(line.split()[:3]) in " ".join(shown.split())
    assert [m for m in imported if m == "litellm" or m.startswith("litellm.")] == []
    assert "litellm_alipay.payments.mcp_server" not in imported and "litellm_alipay.ops.health" not in imported
    assert stderr == ""


@pytest.mark.parametrize(("command", "option"), [
    ("keygen", "--out"), ("demo", "--help"), ("check", "--app-public-key"), ("emulator", "--port"),
    ("audit", "--date"), ("notify", "--audit-log"), ("mcp", "--http"),
])
def test_each_command_help_shows_its_own_options(command, option, capsys):
    with pytest.raises(SystemExit) as stopped:
        main([command, "--help"])
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: litellm-alipay {command}") and option in out


def test_a_command_imports_only_its_own_module():
    _, imported, _ = _probe("check", "--help")
    assert "litellm_alipay.ops.health" in imported
    assert "litellm_alipay.payments.mcp_server" not in imported


def test_commands_use_litellms_local_cost_map_unless_the_user_chose(monkeypatch, tmp_path):
    monkeypatch.delenv(LOCAL_COST_MAP_ENV, raising=False)
    assert main(["keygen", "--out", str(tmp_path / "a")]) == 0
    assert os.environ[LOCAL_COST_MAP_ENV] == "True"
    monkeypatch.setenv(LOCAL_COST_MAP_ENV, "False")
    assert main(["keygen", "--out", str(tmp_path / "b")]) == 0
    assert os.environ[LOCAL_COST_MAP_ENV] == "False"


def test_a_command_that_imports_litellm_prints_no_cost_map_warning():
    _, imported, stderr = _probe("mcp", "--help")
    assert "litellm" in imported  # this command does import LiteLLM: the warning would show here
    assert "cost map" not in stderr and "WARNING" not in stderr, stderr
