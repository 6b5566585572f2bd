"""Every tunable of a deployment, validated once into one immutable object.

Values come from the deployment (``litellm_params`` / call kwargs, which LiteLLM hands a custom provider
in ``optional_params``), then from ``ALIPAY_*`` environment variables, then defaults. Names follow the
official SDK's config. Keys and certificates are accepted as PEM, bare base64, or a path to a file
holding either; they are parsed here, once, and never appear in ``repr``.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urlsplit

import cachetools

from .billing.pricing import DEFAULT_TIERS, PricingConfig
from .errors import ConfigurationError
from .resilience.limiter import DEFAULT_GUARD
from .transport.limits import DEFAULT_LIMITS, LIMIT_ENV, ResponseLimits, parse_limits
from .wire import protocol
from .wire.signing import (
    SIGN_TYPES,
    CertKeyRing,
    PrivateKey,
    PublicKey,
    cert_sn,
    load_private_key,
    load_public_key,
    root_cert_sn,
)

#: setting name -> environment variable
ENV = {
    "app_id": "ALIPAY_APP_ID",
    "app_private_key": "ALIPAY_APP_PRIVATE_KEY",
    "alipay_public_key": "ALIPAY_PUBLIC_KEY",
    "api_base": "ALIPAY_GATEWAY_URL",
    "sandbox": "ALIPAY_SANDBOX",
    "sign_type": "ALIPAY_SIGN_TYPE",
    "charset": "ALIPAY_CHARSET",
    "protocol": "ALIPAY_PROTOCOL",
    "app_cert": "ALIPAY_APP_CERT",
    "alipay_public_cert": "ALIPAY_PUBLIC_CERT",
    "alipay_root_cert": "ALIPAY_ROOT_CERT",
    "app_auth_token": "ALIPAY_APP_AUTH_TOKEN",
    "encrypt_key": "ALIPAY_ENCRYPT_KEY",
    "verify_response": "ALIPAY_VERIFY_RESPONSE",
    "read_timeout": "ALIPAY_READ_TIMEOUT",
    "stream_timeout": "ALIPAY_STREAM_TIMEOUT",
    "connect_timeout": "ALIPAY_CONNECT_TIMEOUT",
    "pool_size": "ALIPAY_POOL_SIZE",
    "http2": "ALIPAY_HTTP2",
    "transport": "ALIPAY_TRANSPORT",
    "ssl_verify": "ALIPAY_SSL_VERIFY",
    "redis_url": "ALIPAY_REDIS_URL",
    "rate_limit_per_second": "ALIPAY_RATE_LIMIT_PER_SECOND",
    "rate_limit_per_minute": "ALIPAY_RATE_LIMIT_PER_MINUTE",
    "rate_limit_guard": "ALIPAY_RATE_LIMIT_GUARD",
    "breaker_threshold": "ALIPAY_BREAKER_THRESHOLD",
    "breaker_window": "ALIPAY_BREAKER_WINDOW",
    "breaker_cooldown": "ALIPAY_BREAKER_COOLDOWN",
    "pricing_scheme": "ALIPAY_PRICING_SCHEME",
    "price_per_request_cny": "ALIPAY_PRICE_PER_REQUEST_CNY",
    "price_input_per_million_cny": "ALIPAY_PRICE_INPUT_PER_MILLION_CNY",
    "price_output_per_million_cny": "ALIPAY_PRICE_OUTPUT_PER_MILLION_CNY",
    "cny_per_usd": "ALIPAY_CNY_PER_USD",
    "pricing_tiers": "ALIPAY_PRICING_TIERS",
    "residency_regions": "ALIPAY_RESIDENCY_REGIONS",
    "residency_metadata_key": "ALIPAY_RESIDENCY_METADATA_KEY",
    "residency_consent_key": "ALIPAY_RESIDENCY_CONSENT_KEY",
    "redis_password": "ALIPAY_REDIS_PASSWORD",
    "log_payloads": "ALIPAY_LOG_PAYLOADS",
    # payment actions the gateway executes (B5): limits sent with each request, caps from the money ledger
    "max_action_amount": "ALIPAY_MAX_ACTION_AMOUNT",
    "max_total_amount": "ALIPAY_MAX_TOTAL_AMOUNT",
    "action_cap_per_day": "ALIPAY_ACTION_CAP_PER_DAY",
    "action_cap_per_key_per_day": "ALIPAY_ACTION_CAP_PER_KEY_PER_DAY",
    **LIMIT_ENV,  # the response limits (transport/limits.py)
}
#: Process-wide settings (not per deployment): the shadow traffic's mirrored and mirroring model groups
#: (``shadow.py``); the cost ledger's file is ``billing/ledger.py``'s ``COST_LEDGER_ENV``.
SHADOW_MODEL_ENV = "ALIPAY_SHADOW_MODEL"
SHADOW_SOURCES_ENV = "ALIPAY_SHADOW_SOURCES"
#: The Ant Ling backend's own deployment-only settings (read in ``backends/ant_ling_settings.py``).
BACKEND_SETTING_NAMES = frozenset({
    "backend", "price_input_per_million_usd", "price_output_per_million_usd",
    "price_cache_read_per_million_usd", "slow_down_hold", "slow_down_ramp", "slow_down_factor",
    "action_max_steps",  # the server-side action loop of a backend that cannot act itself (backends/actions.py)
})
#: Deployment keys that are settings, never request parameters: removed before transforms run, and
#: refused when a proxy client sends one (``trust.py``): only the operator sets them.
SETTING_NAMES = frozenset(ENV) | {"api_key", "api_base"} | BACKEND_SETTING_NAMES
#: Settings whose values are secrets: kept out of logs, reprs and LiteLLM's callback payloads.
SECRET_SETTINGS = frozenset({
    "app_private_key", "api_key", "app_auth_token", "encrypt_key", "redis_url", "redis_password",
})
#: How many distinct deployments' settings (and gateways) are kept; least recently used go first.
CACHE_SIZE = 256

#: The one set of words read as "true" (settings, residency consent) and as "false".
TRUE_WORDS = frozenset({"1", "true", "yes", "on", "y"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})
_TRUE, _FALSE = TRUE_WORDS, FALSE_WORDS
#: Residency settings' defaults: the metadata keys naming the user's region and their consent.
DEFAULT_METADATA_KEY = "user_region"
DEFAULT_CONSENT_KEY = "alipay_consent"


_PATH_SUFFIXES = (".pem", ".txt", ".key", ".crt", ".cer", ".der")


def _looks_like_path(text: str) -> bool:
    """A short value that reads as a file path (never a key: PEM has headers, base64 keys are long)."""
    return len(text) < 1024 and "\n" not in text and (
        text.startswith(("/", "~", "./", "../")) or text.lower().endswith(_PATH_SUFFIXES))


def read_key_text(name: str, value: str) -> str:
    """The key text itself, reading ``value`` as a file path when it names an existing file; a value that
    looks like a path to no file says so (with the path, which is no secret), not "not PEM"."""
    text = value.strip()
    if "-----BEGIN" not in text and _looks_like_path(text) and not os.path.isfile(os.path.expanduser(text)):
        where = os.path.abspath(os.path.expanduser(text))
        raise ConfigurationError(name, f"file not found: {where} (give an existing file, the key's PEM text or "
                                       "its bare base64; relative paths are read from the working directory "
                                       f"{os.getcwd()})")
    if "-----BEGIN" not in text and len(text) < 1024 and os.path.isfile(os.path.expanduser(text)):
        try:
            with open(os.path.expanduser(text), encoding="ascii", errors="ignore") as f:
                return f.read()
        except OSError as exc:
            raise ConfigurationError(name, f"cannot read the file it names ({exc.strerror})") from None
    return text


def parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigurationError(name, f"must be true or false, got {value!r}")


def parse_number(name: str, value: Any, kind: type, minimum: float) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigurationError(name, f"must be a {kind.__name__}, got {value!r}") from None
    if number < minimum:
        raise ConfigurationError(name, f"must be at least {minimum}, got {value!r}")
    return number


def parse_transport(value: Any) -> None:
    """``transport`` named the async HTTP stack when there were three; one is left (aiohttp,
    ``transport/http.py``). ``aiohttp`` (or unset) is accepted and changes nothing; any other value is a
    clear error rather than a silent change of stack."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return
    if str(value).strip().lower() != "aiohttp":
        raise ConfigurationError("transport", f"{value!r} is no longer available: every call goes over aiohttp, "
                                 "the one HTTP stack; remove the setting")


def parse_http2(value: Any) -> None:
    """``http2`` asked httpx for HTTP/2; the one stack (aiohttp) speaks HTTP/1.1, so true is refused."""
    if value is not None and parse_bool("http2", value):
        raise ConfigurationError("http2", "HTTP/2 is not available (the one HTTP stack, aiohttp, speaks "
                                 "HTTP/1.1); remove the setting or set it to false")


def normalize_region(region: Any) -> str:
    """``" us-ca "`` → ``"US-CA"``: region codes compare case- and space-insensitively."""
    return str(region).strip().upper()


def parse_regions(value: Any) -> frozenset[str]:
    """Guarded regions (``residency_regions``) from a list or a comma-separated string; blank means none."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        items: Iterable[Any] = value.split(",")
    elif isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        items = value
    else:
        raise ConfigurationError("residency_regions", f"must be a list or a comma-separated string, got {value!r}")
    regions = frozenset(normalize_region(item) for item in items if str(item).strip())
    for region in regions:
        if not region.replace("-", "").replace("_", "").isalnum():
            raise ConfigurationError("residency_regions", f"{region!r} is not a region code such as EU or US-CA")
    return regions


def metadata_key(name: str, value: Any, default: str) -> str:
    """A metadata key setting: a non-blank string, else the default."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if not isinstance(value, str):
        raise ConfigurationError(name, f"must be a metadata key (a string), got {value!r}")
    return value.strip()


def consented(value: Any) -> bool:
    """Consent is an explicit yes: ``True`` or a truthy string. Anything else (absent, ``"no"``) is not."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str | int) and str(value).strip().lower() in TRUE_WORDS


def request_metadata(litellm_params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The caller's metadata as one mapping, wherever LiteLLM put it (the residency guard and the topic route
    read the region and consent from it).

    ``litellm.completion(metadata=…)`` leaves it in ``litellm_params["metadata"]``; the proxy keeps a
    client's ``metadata`` under ``requester_metadata`` of that (and Router calls may use
    ``litellm_metadata``). Keys the caller set directly win over the nested copies.
    """
    merged: dict[str, Any] = {}
    for name in ("litellm_metadata", "metadata"):
        found = (litellm_params or {}).get(name)
        if not isinstance(found, Mapping):
            continue
        nested = found.get("requester_metadata")
        if isinstance(nested, Mapping):
            merged.update(nested)
        merged.update(found)
    return merged


@dataclass(frozen=True, repr=False)
class AlipaySettings:
    app_id: str
    app_private_key: PrivateKey
    gateway_url: str
    alipay_public_key: PublicKey | None = None
    cert_ring: CertKeyRing | None = None
    app_cert_sn: str | None = None
    alipay_root_cert_sn: str | None = None
    sign_type: str = "RSA2"
    charset: str = "utf-8"
    protocol: str = "v2"
    app_auth_token: str | None = None
    encrypt_key: str | None = None
    verify_response: bool = True
    read_timeout: float = 15.0
    stream_timeout: float = 300.0
    connect_timeout: float = 5.0
    pool_size: int = 30
    #: TLS verification: ``None`` = LiteLLM's resolution (``SSL_VERIFY``, ``SSL_CERT_FILE``, certifi),
    #: ``True``/``False``, or the path of a PEM file: a CA bundle or the gateway's pinned certificate
    #: (``egress.ssl_config``)
    ssl_verify: bool | str | None = None
    #: How much an answer may bring back (``transport/limits.py``)
    limits: ResponseLimits = DEFAULT_LIMITS
    redis_url: str | None = None
    rate_limit_per_second: int | None = None
    rate_limit_per_minute: int | None = None
    rate_limit_guard: float = DEFAULT_GUARD  # seconds added to both rate-limit windows (resilience/limiter.py)
    breaker_threshold: int = 3
    breaker_window: float = 300.0
    breaker_cooldown: float = 30.0
    pricing_scheme: str = "request"
    price_per_request_cny: float = 0.03
    price_input_per_million_cny: float | None = None
    price_output_per_million_cny: float | None = None
    cny_per_usd: float = 7.1
    pricing_tiers: tuple[tuple[int, float], ...] = DEFAULT_TIERS
    residency_regions: frozenset[str] = frozenset()
    residency_metadata_key: str = DEFAULT_METADATA_KEY
    residency_consent_key: str = DEFAULT_CONSENT_KEY
    log_payloads: bool = False
    #: B5 limits and daily caps of gateway-executed actions, in cents (None: not set)
    max_action_amount: int | None = None
    max_total_amount: int | None = None
    action_cap_per_day: int | None = None
    action_cap_per_key_per_day: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        mode = "cert" if self.cert_ring else "key"
        return (
            f"AlipaySettings(app_id={self.app_id!r}, gateway_url={self.gateway_url!r}, "
            f"protocol={self.protocol!r}, sign_type={self.sign_type!r}, mode={mode!r})"
        )

    @property
    def v3_base(self) -> str:
        """Scheme and host of the gateway URL: v3 paths hang off it."""
        parts = urlsplit(self.gateway_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def response_key(self) -> PublicKey | CertKeyRing:
        if self.cert_ring is not None:
            return self.cert_ring
        assert self.alipay_public_key is not None
        return self.alipay_public_key


def raw_value(name: str, given: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    value = given.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        value = env.get(ENV[name]) if name in ENV else None
    return value


def build_settings(given: Mapping[str, Any], env: Mapping[str, str] | None = None) -> AlipaySettings:
    """Validate one deployment's settings; every error names the setting at fault."""
    env = os.environ if env is None else env
    raw = {name: raw_value(name, given, env) for name in ENV}

    app_id = raw["app_id"]
    if not app_id or not str(app_id).strip():
        raise ConfigurationError("app_id", "is required (deployment setting or ALIPAY_APP_ID)")
    app_id = str(app_id).strip()
    if not app_id.isdigit():
        raise ConfigurationError("app_id", "must be the numeric Alipay app id")

    private_text = raw["app_private_key"] or given.get("api_key")
    if not private_text:
        raise ConfigurationError(
            "app_private_key", "is required (deployment setting, api_key or ALIPAY_APP_PRIVATE_KEY)"
        )
    private_key = load_private_key(read_key_text("app_private_key", str(private_text)), "app_private_key")

    sign_type = str(raw["sign_type"] or "RSA2").upper()
    if sign_type not in ("RSA2", "RSA"):
        raise ConfigurationError("sign_type", f"must be RSA2 or RSA for RSA keys (one of {SIGN_TYPES})")
    charset = str(raw["charset"] or "utf-8").lower()
    try:
        "测试".encode(charset)
    except (LookupError, UnicodeEncodeError):
        raise ConfigurationError("charset", f"{charset!r} is not a charset that can carry Chinese") from None

    proto = str(raw["protocol"] or "v2").lower()
    if proto not in ("v2", "v3"):
        raise ConfigurationError("protocol", "must be v2 (gateway.do) or v3 (REST)")
    if proto == "v3" and raw["encrypt_key"]:
        raise ConfigurationError("encrypt_key", "AES content encryption is defined for protocol v2 only (A9); "
                                 "use protocol: v2 with encrypt_key, or drop encrypt_key for v3")

    sandbox = parse_bool("sandbox", raw["sandbox"] or False)
    gateway_url = str(raw["api_base"] or (protocol.SANDBOX_URL if sandbox else protocol.PRODUCTION_URL))
    parts = urlsplit(gateway_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError("api_base", "must be a full URL such as https://openapi.alipay.com/gateway.do")
    if proto == "v2" and not parts.path.endswith("gateway.do"):
        raise ConfigurationError("api_base", "must end in /gateway.do for the v2 protocol")

    verify = parse_bool("verify_response", raw["verify_response"] if raw["verify_response"] is not None else True)
    public_key = cert_ring = app_sn = root_sn = None
    if raw["app_cert"] or raw["alipay_public_cert"] or raw["alipay_root_cert"]:
        for name in ("app_cert", "alipay_public_cert", "alipay_root_cert"):
            if not raw[name]:
                raise ConfigurationError(name, "is required in certificate mode (all three certificates)")
        app_sn = cert_sn(read_key_text("app_cert", str(raw["app_cert"])))
        root_sn = root_cert_sn(read_key_text("alipay_root_cert", str(raw["alipay_root_cert"])))
        cert_ring = CertKeyRing([read_key_text("alipay_public_cert", str(raw["alipay_public_cert"]))])
    elif raw["alipay_public_key"]:
        public_key = load_public_key(
            read_key_text("alipay_public_key", str(raw["alipay_public_key"])), "alipay_public_key"
        )
    elif verify:
        raise ConfigurationError(
            "alipay_public_key",
            "is required to verify responses (or set the certificate-mode settings, "
            "or verify_response: false for testing only)",
        )

    parse_transport(raw["transport"])
    parse_http2(raw["http2"])

    def opt_rate(name: str) -> int | None:
        return None if raw[name] in (None, "") else parse_number(name, raw[name], int, 1)

    guard_raw = raw["rate_limit_guard"]
    guard = DEFAULT_GUARD if guard_raw in (None, "") else parse_number("rate_limit_guard", guard_raw, float, 0)
    if not math.isfinite(guard):  # nan passes the minimum check; inf would book nothing ever again
        raise ConfigurationError("rate_limit_guard", f"must be a finite number of seconds, got {guard!r}")

    pricing = PricingConfig.from_settings(raw)  # validated here so a bad price fails at startup
    return AlipaySettings(
        app_id=app_id,
        app_private_key=private_key,
        gateway_url=gateway_url,
        alipay_public_key=public_key,
        cert_ring=cert_ring,
        app_cert_sn=app_sn,
        alipay_root_cert_sn=root_sn,
        sign_type=sign_type,
        charset=charset,
        protocol=proto,
        app_auth_token=str(raw["app_auth_token"]) if raw["app_auth_token"] else None,
        encrypt_key=str(raw["encrypt_key"]) if raw["encrypt_key"] else None,
        verify_response=verify,
        read_timeout=parse_number("read_timeout", raw["read_timeout"] or 15.0, float, 0.001),
        stream_timeout=parse_number("stream_timeout", raw["stream_timeout"] or 300.0, float, 0.001),
        connect_timeout=parse_number("connect_timeout", raw["connect_timeout"] or 5.0, float, 0.001),
        pool_size=parse_number("pool_size", raw["pool_size"] or 30, int, 1),
        ssl_verify=_ssl_verify(raw["ssl_verify"]),
        limits=parse_limits(raw.get),
        redis_url=_redis_url(given, raw["redis_url"], raw["redis_password"]),
        rate_limit_per_second=opt_rate("rate_limit_per_second"),
        rate_limit_per_minute=opt_rate("rate_limit_per_minute"),
        rate_limit_guard=guard,
        breaker_threshold=parse_number("breaker_threshold", raw["breaker_threshold"] or 3, int, 1),
        breaker_window=parse_number("breaker_window", raw["breaker_window"] or 300.0, float, 0.001),
        breaker_cooldown=parse_number("breaker_cooldown", raw["breaker_cooldown"] or 30.0, float, 0.001),
        pricing_scheme=pricing.scheme,
        price_per_request_cny=pricing.price_per_request_cny,
        price_input_per_million_cny=pricing.price_input_per_million_cny,
        price_output_per_million_cny=pricing.price_output_per_million_cny,
        cny_per_usd=pricing.cny_per_usd,
        pricing_tiers=pricing.tiers,
        residency_regions=parse_regions(raw["residency_regions"]),
        residency_metadata_key=metadata_key("residency_metadata_key", raw["residency_metadata_key"],
                                            DEFAULT_METADATA_KEY),
        residency_consent_key=metadata_key("residency_consent_key", raw["residency_consent_key"],
                                           DEFAULT_CONSENT_KEY),
        log_payloads=parse_bool("log_payloads", raw["log_payloads"] or False),
        **_action_limits(raw),
    )


def parse_cents(name: str, value: Any) -> int | None:
    """A yuan amount setting (``"12.50"``, at most 2 decimals, above 0) as integer cents; None when unset."""
    if value in (None, ""):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigurationError(name, f"must be an amount in yuan such as 100.00, got {value!r}") from None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise ConfigurationError(name, f"must be an amount in yuan above 0 with at most 2 decimals, got {value!r}")
    return int(amount * 100)


def _action_limits(raw: Mapping[str, Any]) -> dict[str, int | None]:
    """The B5 limits and daily caps; a daily cap needs ``max_total_amount`` (what each request books)."""
    names = ("max_action_amount", "max_total_amount", "action_cap_per_day", "action_cap_per_key_per_day")
    out = {name: parse_cents(name, raw[name]) for name in names}
    if (out["action_cap_per_day"] or out["action_cap_per_key_per_day"]) and out["max_total_amount"] is None:
        raise ConfigurationError("max_total_amount", "is required with action_cap_per_day or "
                                 "action_cap_per_key_per_day: it is what each action-bearing request books against "
                                 "the day's cap before it is sent (and what the gateway may execute at most)")
    return out


def _ssl_verify(value: Any) -> bool | str | None:
    """``ssl_verify``: true/false, or a readable PEM file (a CA bundle, or the gateway's own certificate
    pinned); unset leaves LiteLLM's default."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.lower() in _TRUE | _FALSE:
        return parse_bool("ssl_verify", text)
    path = os.path.expanduser(text)
    if not os.path.isfile(path):
        raise ConfigurationError(
            "ssl_verify", f"must be true, false or the path of a CA bundle or pinned certificate (PEM); "
                          f"no file at {text!r}")
    try:
        with open(path, "rb") as bundle:
            head = bundle.read(65536)
    except OSError as exc:
        raise ConfigurationError("ssl_verify", f"cannot read the CA bundle {text!r} ({exc.strerror})") from None
    if b"-----BEGIN CERTIFICATE-----" not in head:
        raise ConfigurationError("ssl_verify", f"{text!r} holds no PEM certificate (a CA bundle is PEM)")
    return os.path.abspath(path)


def _redis_url(given: Mapping[str, Any], url: Any, password: Any) -> str | None:
    """The Redis URL with its password; a password written into a deployment's ``redis_url`` is refused
    because LiteLLM's ``/model/info`` shows ``litellm_params`` with only key-like names masked."""
    if not url:
        return None
    text = str(url).strip()
    parts = urlsplit(text)
    if given.get("redis_url") and parts.password:
        raise ConfigurationError(
            "redis_url",
            "holds a password, which the proxy's /model/info would show: put it in redis_password "
            "(masked by LiteLLM) or in the ALIPAY_REDIS_URL environment variable",
        )
    if password and not parts.password:
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{quote(user, safe='')}:{quote(str(password), safe='')}@{host}"
        text = parts._replace(netloc=netloc).geturl()
    return text


class BoundedCache:
    """Values built once per key and reused; beyond ``size`` the least recently used go, so a flood of
    distinct keys never grows memory. The eviction is ``cachetools.LRUCache``'s; this adds only "build on
    a miss, outside the lock, and keep the first value built" (two threads may build; one value wins)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._items: cachetools.LRUCache[Any, Any] = cachetools.LRUCache(maxsize=size)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get_or_build(self, key: Any, build: Any) -> Any:
        with self._lock:  # a lookup moves the key to the recent end: a mutation
            found = self._items.get(key)
        if found is None:
            built = build()
            with self._lock:
                found = self._items.setdefault(key, built)
        return found


_cache = BoundedCache()


def settings_for(given: Mapping[str, Any]) -> AlipaySettings:
    """The validated settings of a deployment, built once and reused for every call.

    The cache key is the deployment's own setting values plus every ``ALIPAY_*`` variable as it is now;
    it runs per request.
    """
    env = tuple(map(os.environ.get, ENV.values()))
    fingerprint = (env, *sorted((k, str(v)) for k, v in given.items() if v is not None and k in SETTING_NAMES))
    return _cache.get_or_build(fingerprint, lambda: build_settings(given))


def split_params(optional_params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(settings, request params)``: a deployment's settings never travel as request parameters."""
    settings: dict[str, Any] = {}
    request: dict[str, Any] = {}
    for key, value in optional_params.items():
        (settings if key in SETTING_NAMES else request)[key] = value
    return settings, request
