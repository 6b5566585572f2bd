"""The layout's rules, checked on the source: no module outside ``ops/`` imports it, no import cycle
(function-level imports included), no arrow running back up (the lower rooms never import ``settings.py``,
``payments/`` and the CLI never reach into ``emulator/``), one HTTP stack, the gateway adapter one file
per job, and the residency guard fails closed when it was never plugged in."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import litellm_alipay

PACKAGE = Path(litellm_alipay.__file__).parent
# the face and the tools that assemble or run the whole: they may name ops/
ASSEMBLERS = {"litellm_alipay", "litellm_alipay.cli", "litellm_alipay.demo"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every package module ``name`` imports, at module level or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                target = f"{base}.{alias.name}"
                out.add(target if target in modules else base)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {m for m in out if m in modules and m != name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_nothing_outside_ops_imports_ops(graph):
    offenders = sorted(
        (name, target) for name, targets in graph.items() for target in targets
        if target.startswith("litellm_alipay.ops") and not name.startswith("litellm_alipay.ops")
        and name not in ASSEMBLERS
    )
    assert offenders == []


def test_no_import_cycle(graph):
    seen: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        seen[name] = 1
        for target in sorted(graph[name]):
            if seen.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in seen:
                visit(target, path + [target])
        seen[name] = 2

    for name in sorted(graph):
        if name not in seen:
            visit(name, [name])
    # a package importing its own submodules (``x`` → ``x.y`` → ``x``) is Python's, not a cycle of rooms
    rooms = [c for c in cycles if not all(m.startswith(c[0] + ".") or m == c[0] for m in c)]
    assert rooms == []


#: Rooms below the settings object: they take what they need from it as arguments (a Protocol where a type
#: is wanted), never by importing it.
BELOW_SETTINGS = ("litellm_alipay.billing", "litellm_alipay.resilience", "litellm_alipay.transport",
                  "litellm_alipay.wire", "litellm_alipay.serving")


def test_no_arrow_runs_back_up_to_settings(graph):
    offenders = sorted((name, target) for name, targets in graph.items() for target in targets
                       if name.startswith(BELOW_SETTINGS) and target == "litellm_alipay.settings")
    assert offenders == []


def test_payments_and_the_cli_do_not_reach_into_the_emulator(graph):
    offenders = sorted((name, target) for name, targets in graph.items() for target in targets
                       if (name.startswith("litellm_alipay.payments") or name == "litellm_alipay.cli")
                       and target.startswith("litellm_alipay.emulator")
                       and target != "litellm_alipay.emulator.server")  # the CLI mounts the emulator's command
    assert offenders == []
    assert "litellm_alipay.serving.listen" in graph["litellm_alipay.payments.mcp_server"]


def test_one_http_stack_and_no_old_import_paths():
    modules = _modules()
    assert "litellm_alipay.transport.h1" not in modules and "litellm_alipay._moved" not in modules
    gateway = sorted(name for name in modules if name.startswith("litellm_alipay.backends.gateway."))
    assert gateway == [f"litellm_alipay.backends.gateway.{job}"
                       for job in ("cost", "envelope", "oauth", "send", "stream", "v3", "verify")]
    for name, path in modules.items():  # no module is longer than it takes to read at once
        if name.startswith("litellm_alipay.backends.gateway"):
            assert len(path.read_text().splitlines()) <= 250, name


def test_residency_without_its_guard_is_refused_not_sent(monkeypatch):
    import litellm

    from litellm_alipay import provider

    monkeypatch.setattr(provider, "PRE_SEND_CHECKS", {})
    settings = type("S", (), {"residency_regions": frozenset({"EU"})})()
    with pytest.raises(litellm_alipay.ConfigurationError, match="residency_regions.*not installed"):
        provider._check_residency(settings, {"metadata": {"user_region": "EU"}})
    assert issubclass(litellm.ContentPolicyViolationError, litellm.BadRequestError)


def test_the_face_plugs_the_residency_guard_in():
    from litellm_alipay import provider
    from litellm_alipay.ops import residency

    assert litellm_alipay.register is provider.register
    assert provider.PRE_SEND_CHECKS["residency_regions"] is residency.pre_send


def test_litellm_internal_params_are_litellms_own():
    from litellm.types.utils import all_litellm_params

    from litellm_alipay.transforms import LITELLM_INTERNAL_PARAMS

    assert set(all_litellm_params) <= LITELLM_INTERNAL_PARAMS
    assert not {"temperature", "max_tokens", "tools", "user", "response_format"} & LITELLM_INTERNAL_PARAMS
