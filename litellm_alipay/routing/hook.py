"""The topic route as LiteLLM proxy hooks (``callbacks: [litellm_alipay.routing.hook.assistant_router]``).

* ``async_pre_call_hook`` (before the Router picks a deployment): a request to ``assistant`` gets the model
  group ``decide`` chose — or a 400 naming the consent setting when residency forbids the Alipay actions it
  needs. The Router then does everything else as for any model group (fallbacks, retries, cooldowns,
  spend). The decision is written to the request's ``metadata["alipay_route"]`` and to
  ``metadata["spend_logs_metadata"]["alipay_route"]``: LiteLLM's standard logging payload (every success
  and failure callback) and the proxy's spend logs carry ``spend_logs_metadata``.
* ``async_post_call_response_headers_hook``: the decision, in response headers (``x-alipay-route``,
  ``x-alipay-route-reason``, ``x-alipay-route-model``) with the cost saved against Alipay
  (``x-alipay-route-saved-usd``).

Why a proxy hook and not a Router strategy: LiteLLM's pre-routing strategies are its own auto routers,
chosen by reserved ``auto_router/…`` model names — there is no registration for a third-party strategy on
1.108.7 or 1.110.x, and the Router's internals differ between the two (1.110 moved routing into a Rust
core). ``async_pre_call_hook`` and the response-headers hook have the same signature on both.
Outside the proxy, call ``decide`` yourself and pass its ``model`` to ``Router.acompletion``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from ..billing.pricing import SETTINGS as PRICING_SETTINGS
from ..billing.pricing import PricingConfig
from ..settings import ENV as ALIPAY_ENV
from .decide import REFUSED, REGIONAL, decide, refusal_message
from .savings import saved_usd
from .settings import RouteSettings

log = logging.getLogger("litellm_alipay.routing")
#: Where the decision travels with the request (metadata: logged by LiteLLM, never sent to a model).
ROUTE_KEY = "alipay_route"


def _metadata(data: dict[str, Any]) -> dict[str, Any]:
    metadata = data.get("metadata")
    if not isinstance(metadata, dict):
        metadata = data["metadata"] = {}
    return metadata


class AssistantRouter(CustomLogger):
    """Sends a request to the routed name to Alipay's or the regional model group (``decide``)."""

    def __init__(self, settings: RouteSettings | None = None, pricing: PricingConfig | None = None) -> None:
        super().__init__()
        self._settings = settings
        self._pricing = pricing

    @property
    def settings(self) -> RouteSettings:
        """Read on first use, not at import: the proxy applies its config's ``environment_variables`` after
        importing callbacks."""
        if self._settings is None:
            self._settings = RouteSettings.from_env()
        return self._settings

    @property
    def pricing(self) -> PricingConfig:
        if self._pricing is None:
            self._pricing = PricingConfig.from_settings(
                {name: os.environ.get(ALIPAY_ENV[name]) for name in PRICING_SETTINGS})
        return self._pricing

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any) -> dict:
        if isinstance(data.get("metadata"), dict):
            data["metadata"].pop(ROUTE_KEY, None)  # a decision is ours to write, never a client's
            spend = data["metadata"].get("spend_logs_metadata")
            if isinstance(spend, dict):
                spend.pop(ROUTE_KEY, None)
        settings = self.settings
        if data.get("model") != settings.model or "messages" not in data:
            return data
        decision = decide(data, settings)
        log.info("route %s -> %s (%s, %s: %s)", settings.model, decision.model or "refused", decision.side,
                 decision.reason, decision.detail)
        if decision.side == REFUSED:
            from fastapi import HTTPException

            raise HTTPException(status_code=400, detail={"error": refusal_message(decision, settings)})
        data["model"] = decision.model
        metadata = _metadata(data)
        metadata[ROUTE_KEY] = decision.as_metadata()
        spend = metadata.get("spend_logs_metadata")
        metadata["spend_logs_metadata"] = {**(spend if isinstance(spend, dict) else {}),
                                           ROUTE_KEY: decision.as_metadata()}
        return data

    async def async_post_call_response_headers_hook(self, data: dict, user_api_key_dict: Any, response: Any,
                                                    request_headers: dict[str, str] | None = None,
                                                    litellm_call_info: dict[str, object] | None = None,
                                                    ) -> dict[str, str] | None:
        metadata = data.get("metadata") if isinstance(data, dict) else None
        decision = metadata.get(ROUTE_KEY) if isinstance(metadata, dict) else None
        if not isinstance(decision, dict):
            return None
        headers = {"x-alipay-route": str(decision["side"]), "x-alipay-route-reason": str(decision["reason"]),
                   "x-alipay-route-model": str(decision["model"])}
        if decision["side"] == REGIONAL and response is not None:
            headers["x-alipay-route-saved-usd"] = f"{self._saved(data, response):.8f}"
        elif response is not None:
            headers["x-alipay-route-saved-usd"] = "0"
        return headers

    def _saved(self, data: dict, response: Any) -> float:
        choices = getattr(response, "choices", None) or []
        message = getattr(choices[0], "message", None) if choices else None
        answer = getattr(message, "content", None) if message is not None else None
        hidden = getattr(response, "_hidden_params", None)
        cost = hidden.get("response_cost") if isinstance(hidden, dict) else None
        return saved_usd(data.get("messages"), answer if isinstance(answer, str) else "",
                         cost if isinstance(cost, int | float) else None, self.pricing)


assistant_router = AssistantRouter()
