"""Data residency: what must not leave its region is refused before anything is sent to Alipay.

A request is *marked* by the caller: its metadata names the end user's region (``user_region`` by
default) and, when the user agreed to processing in China, a consent flag (``alipay_consent``). A
deployment configured with guarded regions (``residency_regions: "EU,US-CA"``) refuses a marked request
from one of them without consent, raising ``DataResidencyError``; the provider maps it to LiteLLM's
``ContentPolicyViolationError``, the one error the Router's ``content_policy_fallbacks`` act on, so the
request goes to a regional model instead.

Why metadata and not a request parameter: metadata never travels to a model (LiteLLM consumes it), so the
marker cannot leak into the prompt or to the fallback provider, and the proxy passes a client's
``metadata`` through (under ``requester_metadata`` on newer releases; both places are read).

The guard is pure (``check``); ``request_metadata`` only finds the metadata in LiteLLM's parameters.
``pre_send`` plugs it into the provider (``ops.install``): the provider names no operations module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import DataResidencyError
from ..settings import (  # validated with the deployment; re-exported for this guard's callers
    DEFAULT_CONSENT_KEY,
    DEFAULT_METADATA_KEY,
    AlipaySettings,
    consented,
    metadata_key,
    normalize_region,
    parse_regions,
    request_metadata,
)

__all__ = ["DEFAULT_CONSENT_KEY", "DEFAULT_METADATA_KEY", "SETTINGS", "check", "consented", "metadata_key",
           "normalize_region", "parse_regions", "pre_send", "request_metadata"]

#: Setting names (as in ``settings.ENV``) this module reads.
SETTINGS = ("residency_regions", "residency_metadata_key", "residency_consent_key")


def check(metadata: Mapping[str, Any], regions: frozenset[str], *, metadata_key: str = DEFAULT_METADATA_KEY,
          consent_key: str = DEFAULT_CONSENT_KEY) -> None:
    """Raise ``DataResidencyError`` when ``metadata`` marks a user in a guarded region without consent.

    An unmarked request passes: the guard enforces what the caller knows, it does not guess a region.
    """
    if not regions:
        return
    region = metadata.get(metadata_key)
    if region is None or not str(region).strip():
        return
    code = normalize_region(region)
    if code in regions and not consented(metadata.get(consent_key)):
        raise DataResidencyError(
            f"request for a user in region {code} is not sent to Alipay without consent: set metadata "
            f"{consent_key}=true once the user agreed, or route it to a regional model "
            f"(guarded regions: {', '.join(sorted(regions))})"
        )


def pre_send(settings: AlipaySettings, litellm_params: Mapping[str, Any] | None) -> None:
    """The provider's pre-send hook (``provider.PRE_SEND_CHECKS``): a deployment with guarded regions
    refuses a marked request before anything is built or sent."""
    if settings.residency_regions:
        check(request_metadata(litellm_params), settings.residency_regions,
              metadata_key=settings.residency_metadata_key, consent_key=settings.residency_consent_key)
