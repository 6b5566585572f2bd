"""The emulator's settings: registered apps, quotas, fault rules, model limits.

Everything is parsed and validated once at start (keys included: parsing an RSA key costs tens of
milliseconds, so the request path only ever sees key objects). Validation errors are
``ConfigurationError`` naming the offending field, e.g. ``apps[1].quota.per_second``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..wire.signing import (
    PrivateKey,
    PublicKey,
    cert_sn,
    load_certificate,
    load_private_key,
    load_public_key,
    root_cert_sn,
)

#: Tier presets (B4): standard = 100 requests/minute, production = 50 requests/second.
TIERS: dict[str, tuple[int | None, int | None]] = {
    "unlimited": (None, None),
    "standard": (100, None),
    "production": (None, 50),
}

FAULT_KINDS = frozenset({
    "system_error", "http_5xx", "rate_limit", "latency", "stall", "truncate", "bad_signature",
    "drop", "drop_after_actions", "cut_stream", "stream_error", "trickle", "slow_down",
    "acq_system_error", "acq_system_error_after", "stall_after_actions", "change_mind",
})


@dataclass
class QuotaConfig:
    """Sliding-window request quotas of one app; ``None`` means no limit on that window."""

    per_minute: int | None = None
    per_second: int | None = None


@dataclass
class AppConfig:
    """One registered app: how its requests are authenticated and how much it may send."""

    app_id: str
    public_key: PublicKey
    sign_type: str = "RSA2"
    tier: str = "unlimited"
    quota: QuotaConfig = field(default_factory=QuotaConfig)
    #: certificate mode: the SN the app must send as ``app_cert_sn`` (None = public-key mode)
    app_cert_sn: str | None = None
    #: AES key (base64) for ``encrypt_type=AES`` requests
    encrypt_key: str | None = None
    #: answer AI calls without a valid ``auth_token`` with 20001 aop.invalid-auth-token
    require_auth_token: bool = False

    @property
    def cert_mode(self) -> bool:
        return self.app_cert_sn is not None


@dataclass
class FaultRule:
    """One fault: what to inject, when (probability, next N, request numbers) and for whom.

    ``next`` counts down on each injection; the rule is spent at 0. ``requests`` are 1-based ordinals
    of gateway API requests (``/gateway.do`` and ``/v3``) since start or the last reset. With neither,
    ``probability`` (default 1.0) is rolled on each matching request with the emulator's seeded RNG.
    """

    kind: str
    probability: float = 1.0
    next: int | None = None
    requests: tuple[int, ...] = ()
    methods: tuple[str, ...] = ()
    app_ids: tuple[str, ...] = ()
    seconds: float = 0.0
    status: int = 503

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "probability": self.probability, "next": self.next,
            "requests": list(self.requests), "methods": list(self.methods),
            "app_ids": list(self.app_ids), "seconds": self.seconds, "status": self.status,
        }


@dataclass
class EmulatorConfig:
    """The whole emulator: the "Alipay" side's keys, the apps, the model and the fault rules."""

    alipay_private_key: PrivateKey
    apps: dict[str, AppConfig] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 0
    #: SN of the Alipay public-key certificate, sent as ``alipay_cert_sn`` to certificate-mode apps
    alipay_cert_sn: str | None = None
    #: ``alipay_root_cert_sn`` certificate-mode apps must send
    alipay_root_cert_sn: str | None = None
    chat_models: tuple[str, ...] = ("ant-fin-chat", "ant-fin-chat-lite")
    embed_models: tuple[str, ...] = ("ant-fin-embed",)
    embed_dimensions: int = 256
    max_context_chars: int = 32000
    timestamp_tolerance_seconds: float = 900.0
    token_expires_in: int = 1296000
    refresh_expires_in: int = 2592000
    seed: int = 0
    faults: list[FaultRule] = field(default_factory=list)
    #: factor on Alipay's notification resend schedule (4m, 10m, …): 0.001 resends within seconds
    notify_delay_scale: float = 1.0
    #: (app_id, trade) pairs created at start (``--demo`` seeds a few); see ``POST /_admin/trades``
    seed_trades: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: bearer token the ``/_admin/*`` endpoints require (``--admin-token``); mandatory beyond loopback
    admin_token: str | None = field(default=None, repr=False)


# ------------------------------------------------------------------------------------------ parsing
def _read_key_text(value: str, where: str) -> str:
    """A key given inline (PEM or bare base64) or as a path to a file holding it."""
    text = value.strip()
    if text.startswith("-----BEGIN"):
        return text
    path = Path(text).expanduser()
    if len(text) < 4096 and path.is_file():
        try:
            return path.read_text()
        except OSError as exc:
            raise ConfigurationError(where, f"cannot read key file {path}: {exc.strerror}") from None
    if len(text) > 200:
        return text  # the console's bare base64
    raise ConfigurationError(where, f"no such key file: {path}")


def _int_or_none(value: Any, where: str, minimum: int = 0) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(where, f"must be an integer >= {minimum}")
    return value


def _number(value: Any, where: str, minimum: float = 0.0, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(where, "must be a number")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f" and <= {maximum}" if maximum is not None else ""
        raise ConfigurationError(where, f"must be >= {minimum}{bound}")
    return float(value)


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(where, "must be a string or a list of strings")
    return tuple(value)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(where, "must be a mapping")
    return value


def _check_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigurationError(f"{where}.{unknown[0]}" if where else unknown[0], "is not a known setting")


def parse_quota(data: Any, where: str) -> QuotaConfig:
    data = _mapping(data, where)
    _check_keys(data, {"per_minute", "per_second"}, where)
    return QuotaConfig(
        per_minute=_int_or_none(data.get("per_minute"), f"{where}.per_minute", 1),
        per_second=_int_or_none(data.get("per_second"), f"{where}.per_second", 1),
    )


def parse_fault(data: Any, where: str = "fault") -> FaultRule:
    """A ``FaultRule`` from a mapping (YAML config or the admin endpoint's JSON)."""
    data = _mapping(data, where)
    _check_keys(
        data, {"kind", "probability", "next", "requests", "methods", "app_ids", "seconds", "status"},
        where,
    )
    kind = data.get("kind")
    if kind not in FAULT_KINDS:
        raise ConfigurationError(f"{where}.kind", f"must be one of {', '.join(sorted(FAULT_KINDS))}")
    requests = data.get("requests") or ()
    if not isinstance(requests, Sequence) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in requests
    ):
        raise ConfigurationError(f"{where}.requests", "must be a list of request numbers >= 1")
    status = data.get("status", 503 if kind == "http_5xx" else 429 if kind == "rate_limit" else 503)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ConfigurationError(f"{where}.status", "must be an HTTP status code")
    if kind == "http_5xx" and not 500 <= status <= 599:
        raise ConfigurationError(f"{where}.status", "must be 5xx for kind http_5xx")
    return FaultRule(
        kind=kind,
        probability=_number(data.get("probability", 1.0), f"{where}.probability", 0.0, 1.0),
        next=_int_or_none(data.get("next"), f"{where}.next", 1),
        requests=tuple(requests),
        methods=_str_list(data.get("methods"), f"{where}.methods"),
        app_ids=_str_list(data.get("app_ids"), f"{where}.app_ids"),
        seconds=_number(data.get("seconds", 0.0), f"{where}.seconds", 0.0, 3600.0),
        status=status,
    )


def parse_faults(data: Any, where: str = "faults") -> list[FaultRule]:
    if data is None:
        return []
    if not isinstance(data, Sequence) or isinstance(data, str):
        raise ConfigurationError(where, "must be a list of fault rules")
    return [parse_fault(item, f"{where}[{i}]") for i, item in enumerate(data)]


def parse_app(data: Any, where: str) -> AppConfig:
    data = _mapping(data, where)
    _check_keys(
        data,
        {"app_id", "app_public_key", "app_cert", "sign_type", "tier", "quota", "encrypt_key",
         "require_auth_token"},
        where,
    )
    app_id = data.get("app_id")
    if not isinstance(app_id, (str, int)) or not str(app_id).strip():
        raise ConfigurationError(f"{where}.app_id", "is required")
    sign_type = data.get("sign_type", "RSA2")
    if sign_type not in ("RSA2", "RSA"):
        raise ConfigurationError(f"{where}.sign_type", "must be RSA2 or RSA")
    tier = data.get("tier", "unlimited")
    if tier not in TIERS:
        raise ConfigurationError(f"{where}.tier", f"must be one of {', '.join(TIERS)}")
    app_cert_sn = None
    if data.get("app_cert"):
        cert_text = _read_key_text(str(data["app_cert"]), f"{where}.app_cert")
        public_key = load_public_key(cert_text, f"{where}.app_cert")
        app_cert_sn = cert_sn(cert_text)
    elif data.get("app_public_key"):
        where_key = f"{where}.app_public_key"
        public_key = load_public_key(_read_key_text(str(data["app_public_key"]), where_key), where_key)
    else:
        raise ConfigurationError(f"{where}.app_public_key", "is required (or app_cert)")
    per_minute, per_second = TIERS[tier]
    quota = parse_quota(data.get("quota"), f"{where}.quota")
    quota = QuotaConfig(quota.per_minute or per_minute, quota.per_second or per_second)
    return AppConfig(
        app_id=str(app_id), public_key=public_key, sign_type=sign_type, tier=tier, quota=quota,
        app_cert_sn=app_cert_sn, encrypt_key=data.get("encrypt_key") or None,
        require_auth_token=bool(data.get("require_auth_token", False)),
    )


_TOP_KEYS = {
    "host", "port", "alipay_private_key", "alipay_cert", "alipay_root_cert", "apps", "faults", "models",
    "max_context_chars", "timestamp_tolerance_seconds", "oauth", "seed", "notify_delay_scale",
}


def config_from_mapping(
    data: Mapping[str, Any], *, base: EmulatorConfig | None = None
) -> EmulatorConfig:
    """Build (or extend ``base``) from a parsed YAML document."""
    data = _mapping(data, "config")
    _check_keys(data, _TOP_KEYS, "")
    if data.get("alipay_private_key"):
        key = load_private_key(
            _read_key_text(str(data["alipay_private_key"]), "alipay_private_key"), "alipay_private_key"
        )
    elif base is not None:
        key = base.alipay_private_key
    else:
        raise ConfigurationError("alipay_private_key", "is required (or run with --demo)")
    cfg = base or EmulatorConfig(alipay_private_key=key)
    cfg.alipay_private_key = key
    if data.get("alipay_cert"):
        text = _read_key_text(str(data["alipay_cert"]), "alipay_cert")
        load_certificate(text, "alipay_cert")
        cfg.alipay_cert_sn = cert_sn(text)
    if data.get("alipay_root_cert"):
        cfg.alipay_root_cert_sn = root_cert_sn(
            _read_key_text(str(data["alipay_root_cert"]), "alipay_root_cert")
        )
    if "host" in data:
        cfg.host = str(data["host"])
    if "port" in data:
        cfg.port = _int_or_none(data["port"], "port") or 0
    if data.get("admin_token"):
        cfg.admin_token = str(data["admin_token"])
    apps = data.get("apps") or []
    if not isinstance(apps, Sequence) or isinstance(apps, str):
        raise ConfigurationError("apps", "must be a list")
    for i, item in enumerate(apps):
        app = parse_app(item, f"apps[{i}]")
        cfg.apps[app.app_id] = app
    cfg.faults.extend(parse_faults(data.get("faults")))
    models = _mapping(data.get("models"), "models")
    _check_keys(models, {"chat", "embed", "embed_dimensions"}, "models")
    if "chat" in models:
        cfg.chat_models = _str_list(models["chat"], "models.chat")
    if "embed" in models:
        cfg.embed_models = _str_list(models["embed"], "models.embed")
    if "embed_dimensions" in models:
        cfg.embed_dimensions = _int_or_none(models["embed_dimensions"], "models.embed_dimensions", 1) or 1
    if "max_context_chars" in data:
        cfg.max_context_chars = _int_or_none(data["max_context_chars"], "max_context_chars", 1) or 1
    if "timestamp_tolerance_seconds" in data:
        cfg.timestamp_tolerance_seconds = _number(
            data["timestamp_tolerance_seconds"], "timestamp_tolerance_seconds"
        )
    oauth = _mapping(data.get("oauth"), "oauth")
    _check_keys(oauth, {"expires_in", "re_expires_in"}, "oauth")
    if "expires_in" in oauth:
        cfg.token_expires_in = _int_or_none(oauth["expires_in"], "oauth.expires_in") or 0
    if "re_expires_in" in oauth:
        cfg.refresh_expires_in = _int_or_none(oauth["re_expires_in"], "oauth.re_expires_in") or 0
    if "notify_delay_scale" in data:
        cfg.notify_delay_scale = _number(data["notify_delay_scale"], "notify_delay_scale", 0.0, 1.0)
    if "seed" in data:
        cfg.seed = _int_or_none(data["seed"], "seed") or 0
    return cfg


def load_yaml(path: str | Path) -> Mapping[str, Any]:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise ConfigurationError("config", f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError("config", f"{path} is not valid YAML: {exc}") from None
    return _mapping(data, "config")


def check_admin_exposure(config: EmulatorConfig) -> None:
    """Refuse to serve unauthenticated admin endpoints on anything but loopback."""
    host = config.host.strip("[]")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not config.admin_token:
        raise ConfigurationError(
            "admin_token", f"is required when the emulator listens beyond loopback (host {config.host}): "
            "pass --admin-token (or ALIPAY_EMULATOR_ADMIN_TOKEN, or admin_token in the config)")
