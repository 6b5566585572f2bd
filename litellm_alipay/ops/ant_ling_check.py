"""``litellm-alipay check --backend ant-ling``: an Ant Ling deployment's settings and the models its key sees.

A live check a user runs with a real key (``GET /models`` answers 401 for a bad one); the test suite runs
it against the emulator only. The key is never printed: the settings line names the key by its digest.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..backends.ant_ling_settings import build_ant_ling_settings
from ..errors import ConfigurationError
from .check_result import CheckResult, error_text, fail, ok, warn


def ant_ling_checks(given: Mapping[str, Any], *, call: bool = True, model: str | None = None,
                    timeout: float = 10.0, env: Mapping[str, str] | None = None) -> list[CheckResult]:
    """Settings, then (with ``call``) the model list the key can see, and whether ``model`` is on it."""
    try:
        settings = build_ant_ling_settings(given, os.environ if env is None else env)
    except ConfigurationError as exc:
        return [fail("settings", str(exc))]
    results = [ok("settings", f"Ant Ling endpoint {settings.api_base}, key {settings.app_id}")]
    if not call:
        return results
    from ..backends.ant_ling import AntLingBackend

    try:
        models = AntLingBackend(settings).models(timeout)
    except Exception as exc:  # every failure of the call is the finding, whatever its class
        return [*results, fail("models", error_text(exc))]
    results.append(ok("models", f"{len(models)} models visible to the key: {', '.join(models)}"))
    if model and model not in models:
        results.append(warn("model", f"{model} is not among the models this key can see"))
    return results
