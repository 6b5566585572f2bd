"""Old import paths of the modules that moved into rooms: ``litellm_alipay.gateway`` is
``litellm_alipay.backends.gateway`` — the same module object, so patches and ``isinstance`` agree.

Why a finder and not a file per old path: a file left at the old path would turn every rename into an
edit for git (a branch still editing ``gateway.py`` would then conflict instead of following the move),
and would put the flat layout back into the folder list. New code imports the new paths.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType

_PACKAGE = __name__.rpartition(".")[0]
#: old name (under the package) → new name
MOVED = {
    "gateway": "backends.gateway", "streaming": "backends.gateway_stream", "user_auth": "backends.user_auth",
    "diagnosis": "backends.diagnosis", "protocol": "wire.protocol", "signing": "wire.signing",
    "egress": "transport.egress", "loop_resources": "transport.loop_resources", "guards": "resilience.guards",
    "pricing": "billing.pricing", "health": "ops.health", "shadow": "ops.shadow",
    "guardrails": "ops.guardrails", "residency": "ops.residency", "schema_prompt": "wire.schema_prompt",
    "backends.ant_ling_check": "ops.ant_ling_check", "resilience._redis": "resilience.redis_clients",
    "backends._sync": "transport.sync_driver",
}


def _new_name(name: str) -> str | None:
    prefix = _PACKAGE + "."
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix):]
    for old, new in MOVED.items():
        if rest == old or rest.startswith(old + "."):
            return prefix + new + rest[len(old):]
    return None


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers an old name with the module at its new one."""

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001 - the finder protocol
        return importlib.util.spec_from_loader(name, self) if _new_name(name) else None

    def create_module(self, spec) -> ModuleType:  # noqa: ANN001
        module = importlib.import_module(_new_name(spec.name))  # type: ignore[arg-type]
        module.__dict__.setdefault("__real_spec__", module.__spec__)
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = module.__dict__["__real_spec__"]  # the import system just set the alias's spec


def install() -> None:
    """Idempotent: one finder per process."""
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Alias())  # before the path finder: a stale folder must not answer
