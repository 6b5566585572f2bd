"""The backends behind ``alipay/…``: the Alipay AI gateway (``gateway.py`` at the package root, for now)
and Ant Ling (``ant_ling.py``). ``ant_ling_route`` is the provider's one dispatch question: does an Ant
Ling backend serve this deployment, and with which settings?
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..catalogue import is_ant_ling_model
from .ant_ling_settings import BACKEND_ANT_LING, SETTING_NAMES, backend_for

__all__ = ["SETTING_NAMES", "ant_ling_route"]


def ant_ling_route(model: str, optional_params: Mapping[str, Any], api_base: str | None, api_key: str | None
                   ) -> tuple[Any, dict[str, Any]] | None:
    """``(AntLingBackend, request params)`` when Ant Ling serves this deployment, else None (the gateway).

    Cheap for gateway deployments (one prefix test); an Ant Ling deployment's settings are validated once.
    """
    if "backend" not in optional_params and not is_ant_ling_model(model):
        return None
    from ..settings import split_params

    given, request = split_params(optional_params)
    if backend_for(model, given) != BACKEND_ANT_LING:
        return None
    if api_base:
        given.setdefault("api_base", api_base)
    if api_key:
        given.setdefault("api_key", api_key)
    from .ant_ling import ANT_LING
    from .ant_ling_settings import ant_ling_settings_for

    return ANT_LING.backend(ant_ling_settings_for(given)), request
