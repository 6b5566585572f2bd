"""The topic route's settings: which model name clients call, which model groups answer, whose region is home.

One validated, immutable object, read from ``ALIPAY_ROUTE_*`` environment variables (a proxy config sets
them in its ``environment_variables:`` section) and the residency keys the Alipay deployments already use
(``ALIPAY_RESIDENCY_METADATA_KEY``, ``ALIPAY_RESIDENCY_CONSENT_KEY``). Clients cannot change any of it:
a request only carries the metadata that the settings name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..errors import ConfigurationError
from ..settings import DEFAULT_CONSENT_KEY, DEFAULT_METADATA_KEY, metadata_key, parse_regions
from .topic import DEFAULT_THRESHOLD

#: Setting name -> environment variable.
ENV = {
    "model": "ALIPAY_ROUTE_MODEL",
    "alipay_model": "ALIPAY_ROUTE_ALIPAY_MODEL",
    "actions_model": "ALIPAY_ROUTE_ACTIONS_MODEL",
    "regional_model": "ALIPAY_ROUTE_REGIONAL_MODEL",
    "home_regions": "ALIPAY_ROUTE_HOME_REGIONS",
    "topic_threshold": "ALIPAY_ROUTE_TOPIC_THRESHOLD",
    "context_turns": "ALIPAY_ROUTE_CONTEXT_TURNS",
    "extra_terms": "ALIPAY_ROUTE_EXTRA_TERMS",
    "residency_metadata_key": "ALIPAY_RESIDENCY_METADATA_KEY",
    "residency_consent_key": "ALIPAY_RESIDENCY_CONSENT_KEY",
}


@dataclass(frozen=True)
class RouteSettings:
    """``model`` is the name clients call; the three ``*_model`` are model groups of the same proxy."""

    model: str = "assistant"
    alipay_model: str = "fin-chat"
    actions_model: str = "fin-actions"
    regional_model: str = "general-chat"
    home_regions: frozenset[str] = frozenset({"CN"})
    topic_threshold: float = DEFAULT_THRESHOLD
    context_turns: int = 2
    extra_terms: tuple[str, ...] = ()
    residency_metadata_key: str = DEFAULT_METADATA_KEY
    residency_consent_key: str = DEFAULT_CONSENT_KEY

    def __post_init__(self) -> None:
        for name in ("model", "alipay_model", "actions_model", "regional_model"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(name, f"must be a model group name, got {value!r} (set {ENV[name]})")
        if not self.home_regions:
            raise ConfigurationError("home_regions", "must name at least one region, e.g. CN "
                                     f"(set {ENV['home_regions']})")
        if not 0 < self.topic_threshold <= 10:
            raise ConfigurationError("topic_threshold", f"must be in (0, 10], got {self.topic_threshold!r}")
        if not 0 <= self.context_turns <= 10:
            raise ConfigurationError("context_turns", f"must be 0 to 10, got {self.context_turns!r}")
        if len(self.extra_terms) > 200 or any(not 1 <= len(term) <= 64 for term in self.extra_terms):
            raise ConfigurationError("extra_terms", "must be at most 200 terms of 1 to 64 characters "
                                     f"(set {ENV['extra_terms']}, comma-separated)")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RouteSettings:
        """From raw values (strings from the environment); blank or absent means the default."""

        def given(name: str) -> Any:
            value = values.get(name)
            return None if value is None or (isinstance(value, str) and not value.strip()) else value

        kwargs: dict[str, Any] = {}
        for name in ("model", "alipay_model", "actions_model", "regional_model"):
            if given(name) is not None:
                kwargs[name] = str(given(name)).strip()
        if given("home_regions") is not None:
            try:
                kwargs["home_regions"] = parse_regions(given("home_regions"))
            except ConfigurationError as exc:
                raise ConfigurationError("home_regions", f"{exc.problem} (set {ENV['home_regions']})") from None
        for name, kind in (("topic_threshold", float), ("context_turns", int)):
            if given(name) is not None:
                try:
                    kwargs[name] = kind(given(name))
                except (TypeError, ValueError):
                    raise ConfigurationError(name, f"must be a number, got {given(name)!r} (set {ENV[name]})"
                                             ) from None
        if given("extra_terms") is not None:
            raw = given("extra_terms")
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            kwargs["extra_terms"] = tuple(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))
        kwargs["residency_metadata_key"] = metadata_key(
            "residency_metadata_key", values.get("residency_metadata_key"), DEFAULT_METADATA_KEY)
        kwargs["residency_consent_key"] = metadata_key(
            "residency_consent_key", values.get("residency_consent_key"), DEFAULT_CONSENT_KEY)
        return cls(**kwargs)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RouteSettings:
        env = os.environ if environ is None else environ
        return cls.from_mapping({name: env.get(variable) for name, variable in ENV.items()})


SETTINGS = tuple(field.name for field in fields(RouteSettings))
