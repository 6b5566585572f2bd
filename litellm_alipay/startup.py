"""A proxy's broken Alipay deployment is reported when the proxy starts, not at its first request.

LiteLLM builds a custom provider's settings only when a request arrives, so a missing key file or a
malformed key would let ``litellm --config`` start cleanly and fail later. When the proxy imports the
handler (``custom_provider_map``), this module reads the proxy's config file, resolves its
``os.environ/…`` references, validates every ``alipay/…`` deployment's settings exactly as a request
would (each with its own backend's rules: the gateway's or Ant Ling's), and logs one WARNING per broken
deployment naming it, its setting and the fix. The proxy still starts (other deployments may be fine);
nothing is sent anywhere.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from .errors import AlipayError, ConfigurationError

logger = logging.getLogger("litellm_alipay.startup")
_checked: set[str] = set()


def _resolve(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("os.environ/"):
        return os.environ.get(value.split("/", 1)[1])
    return value


def _build(model: str, params: Mapping[str, Any]) -> None:
    """Build one deployment's settings with its own backend's builder, as its first request would.

    Which backend serves it (the gateway or Ant Ling) is decided as the provider decides it
    (``backend_for``): an Ant Ling deployment has no ``/gateway.do`` and no app keys, and judging it by
    the gateway's rules would report a working deployment as broken.
    """
    from .backends.ant_ling_settings import BACKEND_ANT_LING, backend_for, build_ant_ling_settings
    from .settings import build_settings, split_params

    given, _ = split_params(params)
    if backend_for(model, given) == BACKEND_ANT_LING:
        build_ant_ling_settings(given)
    else:
        build_settings(given)


def deployment_problems(model_list: list[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """``(deployment, problem)`` for every ``alipay/…`` deployment whose settings do not build."""
    problems = []
    for position, entry in enumerate(model_list or []):
        params = entry.get("litellm_params") or {}
        model = str(params.get("model", ""))
        if not model.startswith("alipay/"):
            continue
        name = f"{entry.get('model_name', '?')} ({model}, model_list[{position}])"
        missing = [f"{k} reads {v.split('/', 1)[1]}, which is not set" for k, v in params.items()
                   if isinstance(v, str) and v.startswith("os.environ/") and _resolve(v) is None]
        try:
            _build(model.split("/", 1)[1], {k: _resolve(v) for k, v in params.items()})
        except ConfigurationError as exc:
            detail = f"setting {exc.setting!r} {exc.problem}"
            problems.append((name, "; ".join([detail, *missing])))
        except AlipayError as exc:
            problems.append((name, str(exc)))
    return problems


def check_proxy_config() -> list[tuple[str, str]]:
    """Inside a LiteLLM proxy: validate the config file's Alipay deployments once and warn about each
    broken one. Outside a proxy (or without a config file) it does nothing."""
    server = sys.modules.get("litellm.proxy.proxy_server")
    path = getattr(server, "user_config_file_path", None) if server is not None else None
    if not path or path in _checked or not os.path.isfile(path):
        return []
    _checked.add(path)
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError):
        return []  # the proxy reports its own config errors
    problems = deployment_problems(config.get("model_list") or [])
    if problems:
        from litellm._logging import verbose_proxy_logger

        for name, problem in problems:
            for log in (logger, verbose_proxy_logger):
                log.warning("litellm-alipay: deployment %s will fail every request: %s", name, problem)
    return problems
