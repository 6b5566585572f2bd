"""Build an in-process Router from a shipped proxy config, resolving ``os.environ/…`` from a given mapping."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import litellm
import yaml


def _resolve(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("os.environ/"):
        return env[value.split("/", 1)[1]]
    return value


def router_from_config(path: Path, env: Mapping[str, str], **overrides: Any) -> litellm.Router:
    """The config's ``model_list`` and ``router_settings`` as the proxy would build them (no callbacks)."""
    config = yaml.safe_load(path.read_text())
    model_list = [
        {**entry, "litellm_params": {k: _resolve(v, env) for k, v in entry["litellm_params"].items()}}
        for entry in config["model_list"]
    ]
    return litellm.Router(model_list=model_list, **{**(config.get("router_settings") or {}), **overrides})
