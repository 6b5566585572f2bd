"""The LiteLLM proxy as an A2M merchant.

``litellm_settings.callbacks: [litellm_alipay.payments.agent.a2m_proxy.a2m_merchant]``, configured by
the operator only in ``general_settings.alipay_a2m`` (a client can never change it)::

    general_settings:
      alipay_a2m:
        model_groups: {fin-chat: "0.01"}      # or a list, priced at ``price``
        price: "0.01"                         # CNY per call
        goods_name: AI 对话
        service_id: os.environ/ALIPAY_A2M_SERVICE_ID
        seller_id: os.environ/ALIPAY_A2M_SELLER_ID
        seller_name: 示例商户
        exempt_keys: [internal-batch]         # key aliases (or hashed key tokens) that never pay
        # app_id, app_private_key, alipay_public_key, api_base: default to the ALIPAY_* environment

LiteLLM's callback points used (all on ``CustomLogger``, present on 1.108.7 and 1.110.x):

* ``async_pre_call_hook`` — a priced model group without a valid proof: a ``ProxyException`` (402) with
  the bill in ``Payment-Needed`` (the proxy keeps its status and headers on every route); with one,
  the admission is kept in process under a random reference written into the request's ``metadata``.
  The proof is blanked in the logged request headers.
* ``async_post_call_success_hook`` — a non-streamed answer succeeded: served, then confirmed;
* ``async_post_call_streaming_iterator_hook`` — a stream: served and confirmed after its last chunk
  (a client that leaves mid-stream was served; a stream the model broke was not);
* ``async_post_call_failure_hook`` — the call failed: nothing confirmed, the same proof may be retried;
* ``async_post_call_response_headers_hook`` — ``Payment-Validation`` on the 200.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from ...errors import AlipayError, ConfigurationError, PaymentRequiredError
from ...settings import settings_for
from .. import wire
from .a2m import A2MMerchant, A2MSettings, Admission
from .headers import PAYMENT_NEEDED, PAYMENT_PROOF, PAYMENT_VALIDATION

logger = logging.getLogger("litellm_alipay.a2m")

CONFIG_KEY = "alipay_a2m"
#: the metadata key carrying this request's admission reference (a client's own value is dropped)
REF_KEY = "alipay_a2m_ref"
#: admissions in flight per process; a bound, so a flood of abandoned calls cannot grow memory
MAX_IN_FLIGHT = 10_000
_CREDENTIALS = ("app_id", "app_private_key", "alipay_public_key", "api_base", "sandbox")


def _env(value: Any) -> Any:
    """``os.environ/NAME`` as the proxy writes secrets in its config."""
    if isinstance(value, str) and value.startswith("os.environ/"):
        name = value.split("/", 1)[1]
        found = os.environ.get(name)
        if found is None:
            raise ConfigurationError(f"{CONFIG_KEY}", f"reads the environment variable {name}, which is not set")
        return found
    return value


class A2MProxyConfig:
    """The operator's ``alipay_a2m`` block: priced model groups, exemptions, the merchant."""

    def __init__(self, given: Mapping[str, Any]) -> None:
        resolved = {k: _env(v) for k, v in given.items()}
        groups = resolved.get("model_groups")
        if isinstance(groups, str):
            groups = [groups]
        if isinstance(groups, Mapping):
            self.prices = {str(k): wire.amount(_env(v) or resolved.get("price"), f"{CONFIG_KEY}.model_groups.{k}")
                           for k, v in groups.items()}
        elif isinstance(groups, (list, tuple)) and groups:
            price = wire.amount(resolved.get("price"), f"{CONFIG_KEY}.price")
            self.prices = {str(g): price for g in groups}
        else:
            raise ConfigurationError(f"{CONFIG_KEY}.model_groups", "name the model groups that are paid per call "
                                     "(a list, or a mapping of group to price in yuan)")
        self.exempt = frozenset(str(k) for k in (resolved.get("exempt_keys") or ()))
        a2m = A2MSettings.from_mapping({"price": next(iter(self.prices.values())), **resolved})
        credentials = {k: resolved[k] for k in _CREDENTIALS if resolved.get(k) is not None}
        self.merchant = A2MMerchant(settings_for(credentials), a2m,
                                    prices={resource_id(group): price for group, price in self.prices.items()})

    def price_of(self, model_group: Any) -> str | None:
        return self.prices.get(str(model_group)) if model_group is not None else None

    def exempts(self, user_api_key_dict: Any) -> bool:
        alias = getattr(user_api_key_dict, "key_alias", None)
        token = getattr(user_api_key_dict, "api_key", None) or getattr(user_api_key_dict, "token", None)
        return bool(self.exempt) and (alias in self.exempt or token in self.exempt)


def _general_settings() -> Mapping[str, Any]:
    try:
        from litellm.proxy import proxy_server
    except ImportError:  # not in a proxy
        return {}
    return getattr(proxy_server, "general_settings", None) or {}


def _header(data: Mapping[str, Any], name: str) -> str | None:
    request_headers = (data.get("proxy_server_request") or {}).get("headers") or {}
    for key, value in request_headers.items():
        if str(key).lower() == name.lower():
            return str(value)
    return None


def _blank_proof(data: dict[str, Any]) -> None:
    """The proof buys a service: keep it out of every logged copy of the request."""
    for holder in ("proxy_server_request", "metadata", "litellm_metadata"):  # the copies LiteLLM logs
        request_headers = (data.get(holder) or {}).get("headers")
        if isinstance(request_headers, dict):
            for key in list(request_headers):
                if str(key).lower() == PAYMENT_PROOF.lower():
                    request_headers[key] = "***"


def resource_id(model_group: str) -> str:
    """What a proof pays for: one call of one model group, whichever route (never another group)."""
    return f"/model/{model_group}"


class A2MProxyHook(CustomLogger):
    """Prices chosen model groups per call and serves each Payment-Proof once."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self._given = config
        self._config: A2MProxyConfig | None = None
        self._config_source: int | None = None
        self._in_flight: OrderedDict[str, Admission] = OrderedDict()
        self._validations: OrderedDict[str, str] = OrderedDict()

    def config(self) -> A2MProxyConfig | None:
        given = self._given if self._given is not None else _general_settings().get(CONFIG_KEY)
        if not given:
            return None
        if self._config is None or self._config_source != id(given):
            self._config = A2MProxyConfig(given)
            self._config_source = id(given)
        return self._config

    # ------------------------------------------------------------------------- before the call
    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any) -> dict:
        metadata = data.get("metadata")
        if isinstance(metadata, dict):
            metadata.pop(REF_KEY, None)  # only this hook writes it
        from litellm.proxy._types import ProxyException

        try:
            config = self.config()
        except ConfigurationError as exc:  # fail closed: a priced group is never served unbilled
            logger.error("a2m: general_settings.alipay_a2m cannot work: %s", exc)
            raise ProxyException(message=f"payments are misconfigured: {exc}", type="payment_unavailable",
                                 param=None, code=503, provider_specific_fields={"code": "PAYMENT_UNAVAILABLE"}
                                 ) from None
        if config is None:
            return data
        price = config.price_of(data.get("model"))
        if price is None or config.exempts(user_api_key_dict):
            return data
        proof = _header(data, PAYMENT_PROOF)
        _blank_proof(data)
        try:
            admission = await config.merchant.admit(proof, resource_id(str(data["model"])))
        except PaymentRequiredError as refusal:
            # a ProxyException keeps its status and headers on every route (/v1/messages drops an
            # HTTPException's headers); the reason is in the error's ``provider_specific_fields.code``
            extra = {PAYMENT_NEEDED: refusal.payment_needed} if refusal.payment_needed else {}
            raise ProxyException(message=refusal.message, type="payment_required", param=None, code=402,
                                 headers=extra, provider_specific_fields=refusal.body()) from None
        except AlipayError as exc:  # the ledger or a setting: fail closed, never serve unpaid
            logger.error("a2m: cannot take payments: %s", exc)
            raise ProxyException(message="payments are unavailable; retry later", type="payment_unavailable",
                                 param=None, code=503,
                                 provider_specific_fields={"code": "PAYMENT_UNAVAILABLE"}) from None
        ref = admission.claim
        self._remember(self._in_flight, ref, admission)
        self._remember(self._validations, ref, admission.validation)
        if not isinstance(metadata, dict):
            metadata = data["metadata"] = {}
        metadata[REF_KEY] = ref
        return data

    @staticmethod
    def _remember(store: OrderedDict[str, Any], key: str, value: Any) -> None:
        store[key] = value
        while len(store) > MAX_IN_FLIGHT:
            store.popitem(last=False)

    def _take(self, data: Mapping[str, Any] | None) -> Admission | None:
        ref = ((data or {}).get("metadata") or {}).get(REF_KEY)
        return self._in_flight.pop(ref, None) if isinstance(ref, str) else None

    # -------------------------------------------------------------------------- after the call
    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> Any:
        if data.get("stream"):
            return response  # a stream is served after its last chunk (the iterator hook)
        admission = self._take(data)
        if admission is not None:
            await self._fulfil(admission)
        return response

    async def async_post_call_failure_hook(self, request_data: dict, original_exception: Exception,
                                           user_api_key_dict: Any, traceback_str: str | None = None) -> Any:
        admission = self._take(request_data)
        if admission is not None:
            await self._merchant().abandon(admission, f"the call failed: {type(original_exception).__name__}")
        return None

    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict: Any, response: Any,
                                                      request_data: dict) -> AsyncIterator[Any]:
        ref = (request_data.get("metadata") or {}).get(REF_KEY)
        if not isinstance(ref, str) or ref not in self._in_flight:
            async for chunk in response:
                yield chunk
            return
        finished = False
        try:
            async for chunk in response:
                yield chunk
            finished = True
        except (GeneratorExit, BaseException) as exc:
            admission = self._take(request_data)
            if admission is not None:
                if isinstance(exc, Exception):
                    await self._merchant().abandon(admission, f"the stream failed: {type(exc).__name__}")
                else:  # the client left mid-stream: it was served
                    await self._fulfil(admission)
            raise
        if finished:
            admission = self._take(request_data)
            if admission is not None:
                await self._fulfil(admission)

    async def async_post_call_response_headers_hook(self, data: dict, user_api_key_dict: Any, response: Any,
                                                    request_headers: dict | None = None,
                                                    litellm_call_info: dict | None = None) -> dict[str, str] | None:
        ref = ((data or {}).get("metadata") or {}).get(REF_KEY)
        if not isinstance(ref, str):
            return None
        value = self._validations.pop(ref, None)
        return {PAYMENT_VALIDATION: value} if value is not None and response is not None else None

    def _merchant(self) -> A2MMerchant:
        config = self.config()
        assert config is not None
        return config.merchant

    async def _fulfil(self, admission: Admission) -> None:
        try:
            await self._merchant().fulfil(admission)
        except AlipayError as exc:  # served: the answer goes out; the next request with the proof confirms
            logger.error("a2m: served %s but could not record or confirm it: %s", admission.trade_no, exc)


a2m_merchant = A2MProxyHook()
