"""The trust boundary as LiteLLM hooks: ``litellm_settings.callbacks: [litellm_alipay.trust_hooks.trust_boundary]``.

Two jobs the provider cannot do from inside one deployment's call:

* **before routing** (``async_pre_call_hook``, proxy only): refuse a client body that carries a
  deployment setting with a 400 that names it — before the Router tries any deployment — and move a
  client's ``allowed_actions`` to the narrowing key in ``metadata``, so the Router's merge keeps the
  deployment's value as the ceiling;
* **per deployment** (``async_pre_call_deployment_hook``, every async call): strip this provider's
  per-call parameters (user credentials, ``allowed_actions``, ``out_request_no``) from a call to any
  other provider's deployment, so a fallback to OpenAI, Claude or a regional model never receives them.

And one for LiteLLM's own gate (``async_post_call_failure_hook``): a refused key or body field is answered
401/400 with what to do, not 400 "No connected db." or a plain-text 500 (``proxy_refusals.py``).

The provider refuses settings in a proxy body by itself too (``trust.refuse_client_settings``), so a
config without this callback fails closed, not open.
"""

from __future__ import annotations

from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from . import proxy_refusals, trust
from .errors import PROVIDER, AlipayError


def _is_alipay(kwargs: dict[str, Any]) -> bool:
    provider = kwargs.get("custom_llm_provider")
    if provider:
        return provider == PROVIDER
    return str(kwargs.get("model") or "").startswith(PROVIDER + "/")


class AlipayTrustBoundary(CustomLogger):
    """Keeps deployment settings the operator's and the provider's per-call parameters its own."""

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any) -> dict:
        try:
            trust.refuse_client_settings_in_proxy_data(data)
        except AlipayError as exc:
            from fastapi import HTTPException

            raise HTTPException(status_code=400, detail={"error": str(exc)}) from None
        trust.move_client_actions(data)
        trust.stash_credentials(data)
        return data

    async def async_post_call_failure_hook(self, request_data: dict, original_exception: Exception,
                                           user_api_key_dict: Any, traceback_str: str | None = None) -> Any:
        answer = proxy_refusals.refusal(original_exception, request_data)
        if answer is None:
            return None
        from fastapi import HTTPException

        return HTTPException(status_code=answer[0], detail=answer[1])

    async def async_pre_call_deployment_hook(self, kwargs: dict[str, Any], call_type: Any) -> dict | None:
        if _is_alipay(kwargs):
            return None
        stripped = trust.without_per_call_params(kwargs)
        return stripped if stripped is not kwargs else None


trust_boundary = AlipayTrustBoundary()
trust.install_secret_filter()  # the proxy imports this module from its config: its log lines get it too
