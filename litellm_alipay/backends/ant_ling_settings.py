"""The settings of an Ant Ling deployment, validated once into one immutable object.

An Ant Ling deployment needs no Alipay app: a bearer API key (``api_key`` or ``ANT_LING_API_KEY``) and
the endpoint (``api_base``, default ``https://api.ant-ling.com/v1``, or ``ANT_LING_API_BASE``). The
quota, breaker, timeout and pool settings keep the gateway's names (``settings.ENV``), so one deployment
reads the same whichever backend serves it. The key never appears in ``repr``, a log line or an error;
the quota and breaker key is a digest of it, so deployments sharing a key share its budget.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from ..resilience.limiter import DEFAULT_GUARD
from ..settings import BACKEND_SETTING_NAMES, BoundedCache, parse_http2, parse_number, parse_transport
from ..transport.limits import DEFAULT_LIMITS, LIMIT_ENV, ResponseLimits, parse_limits

DEFAULT_API_BASE = "https://api.ant-ling.com/v1"
API_KEY_ENV = "ANT_LING_API_KEY"
API_BASE_ENV = "ANT_LING_API_BASE"
BACKEND_ANT_LING = "ant-ling"
BACKEND_GATEWAY = "gateway"
BACKENDS = (BACKEND_GATEWAY, BACKEND_ANT_LING)

#: Deployment-only setting names this backend adds to the gateway's (part of ``settings.SETTING_NAMES``).
SETTING_NAMES = BACKEND_SETTING_NAMES
#: The gateway's settings an Ant Ling deployment reads too (same names, same meaning).
SHARED_NAMES = (
    "api_base", "api_key", "read_timeout", "connect_timeout", "pool_size", "transport", "http2",
    "redis_url", "rate_limit_per_second", "rate_limit_per_minute", "rate_limit_guard", "breaker_threshold",
    "breaker_window", "breaker_cooldown", "cny_per_usd", *LIMIT_ENV,
)


@dataclass(frozen=True, repr=False)
class AntLingSettings:
    api_key: str
    api_base: str = DEFAULT_API_BASE
    read_timeout: float = 60.0  # reasoning models think for a while before the first byte
    connect_timeout: float = 5.0
    pool_size: int = 30
    #: How much an answer may bring back (``transport/limits.py``)
    limits: ResponseLimits = DEFAULT_LIMITS
    redis_url: str | None = None
    rate_limit_per_second: int | None = None
    rate_limit_per_minute: int | None = None
    rate_limit_guard: float = DEFAULT_GUARD
    breaker_threshold: int = 3
    breaker_window: float = 300.0
    breaker_cooldown: float = 30.0
    cny_per_usd: float = 7.1
    #: USD per million tokens (input, output, cache read) overriding the catalogue, each or None
    price_usd: tuple[float | None, float | None, float | None] = (None, None, None)
    #: "Slow Down" pacing (resilience/adaptive.py): hold the reduced rate, ramp back over, reduction factor
    slow_down_hold: float = 900.0
    slow_down_ramp: float = 900.0
    slow_down_factor: float = 0.5
    #: model calls one request with ``allowed_actions`` may make in the server-side action loop
    action_max_steps: int = 4

    @property
    def app_id(self) -> str:
        """The quota/breaker key (``Guards`` reads ``app_id``): a digest of the key, never the key."""
        return "ant-ling:" + hashlib.sha256(self.api_key.encode()).hexdigest()[:16]

    @property
    def gateway_url(self) -> str:
        """The endpoint, under the name ``Guards`` keys its breakers by."""
        return self.api_base

    def __repr__(self) -> str:
        return f"AntLingSettings(api_base={self.api_base!r}, key={self.app_id!r})"


def _raw(name: str, given: Mapping[str, Any]) -> Any:
    value = given.get(name)
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def _price(name: str, value: Any) -> float | None:
    if value is None:
        return None
    number = parse_number(name, value, float, 0)
    if not math.isfinite(number):
        raise ConfigurationError(name, f"must be a finite number of USD per million tokens, got {value!r}")
    return number


def build_ant_ling_settings(given: Mapping[str, Any], env: Mapping[str, str] | None = None) -> AntLingSettings:
    """Validate one Ant Ling deployment; every error names the setting at fault and the fix."""
    env = os.environ if env is None else env
    raw = {name: _raw(name, given) for name in (*SHARED_NAMES, *SETTING_NAMES)}
    api_key = raw["api_key"] or env.get(API_KEY_ENV)
    if not api_key or not str(api_key).strip():
        raise ConfigurationError(
            "api_key", f"is required for Ant Ling models (deployment setting api_key or {API_KEY_ENV}; "
                       "keys come from https://chat.ant-ling.com/open)")
    api_base = str(raw["api_base"] or env.get(API_BASE_ENV) or DEFAULT_API_BASE).rstrip("/")
    parts = urlsplit(api_base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError("api_base", f"must be a full URL such as {DEFAULT_API_BASE}")
    if api_base.endswith("/gateway.do"):
        raise ConfigurationError("api_base", "is an Alipay gateway URL; Ant Ling models need the Ant Ling "
                                             f"endpoint ({DEFAULT_API_BASE}) or backend: gateway")
    parse_transport(raw["transport"])
    parse_http2(raw["http2"])

    def opt_int(name: str) -> int | None:
        return None if raw[name] is None else parse_number(name, raw[name], int, 1)

    def num(name: str, default: float, minimum: float = 0.001) -> float:
        value = default if raw[name] is None else parse_number(name, raw[name], float, minimum)
        if not math.isfinite(value):
            raise ConfigurationError(name, f"must be a finite number, got {raw[name]!r}")
        return value

    factor = num("slow_down_factor", 0.5)
    if not 0 < factor < 1:
        raise ConfigurationError("slow_down_factor", f"must lie between 0 and 1 (exclusive), got {factor!r}")
    return AntLingSettings(
        api_key=str(api_key).strip(),
        api_base=api_base,
        read_timeout=num("read_timeout", 60.0),
        connect_timeout=num("connect_timeout", 5.0),
        pool_size=int(num("pool_size", 30, 1)),
        limits=parse_limits(raw.get),
        redis_url=str(raw["redis_url"]) if raw["redis_url"] else None,
        rate_limit_per_second=opt_int("rate_limit_per_second"),
        rate_limit_per_minute=opt_int("rate_limit_per_minute"),
        rate_limit_guard=num("rate_limit_guard", DEFAULT_GUARD, 0),
        breaker_threshold=int(num("breaker_threshold", 3, 1)),
        breaker_window=num("breaker_window", 300.0),
        breaker_cooldown=num("breaker_cooldown", 30.0),
        action_max_steps=int(num("action_max_steps", 4, 1)),
        cny_per_usd=num("cny_per_usd", 7.1),
        price_usd=(_price("price_input_per_million_usd", raw["price_input_per_million_usd"]),
                   _price("price_output_per_million_usd", raw["price_output_per_million_usd"]),
                   _price("price_cache_read_per_million_usd", raw["price_cache_read_per_million_usd"])),
        slow_down_hold=num("slow_down_hold", 900.0, 0),
        slow_down_ramp=num("slow_down_ramp", 900.0),
        slow_down_factor=factor,
    )


_cache = BoundedCache()  # like the gateway's settings: built once, bounded


def ant_ling_settings_for(given: Mapping[str, Any]) -> AntLingSettings:
    """The validated settings of a deployment, built once and reused (keyed by its values and env)."""
    fingerprint = (os.environ.get(API_KEY_ENV), os.environ.get(API_BASE_ENV),
                   *sorted((k, str(v)) for k, v in given.items() if v is not None))
    return _cache.get_or_build(fingerprint, lambda: build_ant_ling_settings(given))


def backend_for(model: str, given: Mapping[str, Any]) -> str:
    """Which backend serves a deployment: an explicit ``backend`` setting, else the model id's family."""
    from ..catalogue import is_ant_ling_model

    chosen = given.get("backend")
    if chosen is not None:
        name = str(chosen).strip().lower().replace("_", "-")
        if name not in BACKENDS:
            raise ConfigurationError("backend", f"must be one of {', '.join(BACKENDS)}, got {chosen!r}")
        return name
    return BACKEND_ANT_LING if is_ant_ling_model(model) else BACKEND_GATEWAY
