"""The LiteLLM face: a thin ``CustomLLM`` whose every method delegates to the gateway adapter.

It knows LiteLLM's calling conventions (keyword arguments, settings in ``optional_params``, the end
user in the logging object, ``timeout`` that LiteLLM does not enforce for custom handlers) and nothing
of the wire protocol.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import AsyncIterator, Iterator
from typing import Any

import litellm
from litellm.llms.custom_llm import CustomLLM
from litellm.types.utils import EmbeddingResponse, GenericStreamingChunk, ModelResponse

from . import protocol, residency, transforms
from .errors import AlipayError, ReadTimeoutError, local_error
from .gateway import Gateway
from .pricing import Cost, stream_usage
from .settings import AlipaySettings, settings_for, split_params
from .user_auth import USER_AUTH_PARAMS, UserAuth

PROVIDER = "alipay"


class AlipayLLM(CustomLLM):
    """Alipay's AI gateway as a LiteLLM provider: ``model="alipay/<model>"``."""

    def __init__(self) -> None:
        super().__init__()
        self._gateways: dict[int, Gateway] = {}

    # --------------------------------------------------------------------------------- plumbing
    def _gateway(self, settings: AlipaySettings) -> Gateway:
        gateway = self._gateways.get(id(settings))
        if gateway is None:
            gateway = self._gateways.setdefault(id(settings), Gateway(settings, PROVIDER))
        return gateway

    def _setup(self, model: str, optional_params: dict, litellm_params: dict | None,
               api_base: str | None, api_key: str | None) -> tuple[Gateway, dict[str, Any]]:
        given, request = split_params(optional_params)
        if api_base:
            given.setdefault("api_base", api_base)
        if api_key:
            given.setdefault("api_key", api_key)
        try:
            settings = settings_for(given)
            _check_residency(settings, litellm_params)
        except AlipayError as exc:
            raise local_error(exc, model=model, provider=PROVIDER) from None
        return self._gateway(settings), request

    @staticmethod
    def _drop_params(litellm_params: dict | None) -> bool:
        return bool((litellm_params or {}).get("drop_params") or litellm.drop_params)

    @staticmethod
    def _end_user(request: dict, logging_obj: Any, litellm_params: dict | None) -> None:
        """LiteLLM consumes ``user`` before a custom provider sees it; recover it for ``user_id``."""
        if request.get("user") or request.get("user_id"):
            return
        details = getattr(logging_obj, "model_call_details", None) or {}
        metadata = (litellm_params or {}).get("metadata") or {}
        user = details.get("user") or metadata.get("user_api_key_end_user_id")
        if user:
            request["user"] = user

    def _chat(self, model: str, messages: list, optional_params: dict, litellm_params: dict | None,
              api_base: str | None, api_key: str | None, logging_obj: Any,
              stream: bool) -> tuple[Gateway, dict[str, Any], UserAuth | None]:
        gateway, request = self._setup(model, optional_params, litellm_params, api_base, api_key)
        request.pop("stream", None)
        self._end_user(request, logging_obj, litellm_params)
        user_auth = {name: request.pop(name) for name in USER_AUTH_PARAMS if name in request}
        biz = transforms.chat_biz_content(
            model, messages, request, drop_params=self._drop_params(litellm_params)
        )
        auth = UserAuth.from_params(user_auth, biz.get("user_id"))
        if biz.get("allowed_actions") and not biz.get("out_request_no"):
            biz["out_request_no"] = out_request_no(gateway.settings.app_id, litellm_params, logging_obj)
        if stream:
            biz["stream"] = True
        return gateway, biz, auth

    # -------------------------------------------------------------------------------------- chat
    def completion(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,
                   model_response: ModelResponse, print_verbose: Any, encoding: Any, api_key: Any,
                   logging_obj: Any, optional_params: dict, acompletion: Any = None,
                   litellm_params: Any = None, logger_fn: Any = None, headers: Any = None,
                   timeout: Any = None, client: Any = None) -> ModelResponse:
        gateway, biz, auth = self._chat(model, messages, optional_params, litellm_params, api_base, api_key,
                                        logging_obj, stream=False)
        seconds = _seconds(timeout)
        node = (gateway.call_as_user(protocol.METHOD_CHAT, biz, model, auth, timeout=seconds) if auth
                else gateway.call(protocol.METHOD_CHAT, biz, model, timeout=seconds))
        response = transforms.chat_model_response(node, model_response, model)
        cost = gateway.chat_cost(node.get("usage") or {}, node.get("actions"))  # billed, whatever the check says
        transforms.check_structured(model, biz, response.choices[0].message.content if response.choices else None)
        return _with_cost(response, cost)

    async def acompletion(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,
                          model_response: ModelResponse, print_verbose: Any, encoding: Any, api_key: Any,
                          logging_obj: Any, optional_params: dict, acompletion: Any = None,
                          litellm_params: Any = None, logger_fn: Any = None, headers: Any = None,
                          timeout: Any = None, client: Any = None) -> ModelResponse:
        gateway, biz, auth = self._chat(model, messages, optional_params, litellm_params, api_base, api_key,
                                        logging_obj, stream=False)
        seconds = _seconds(timeout)
        call = (gateway.acall_as_user(protocol.METHOD_CHAT, biz, model, auth, timeout=seconds) if auth
                else gateway.acall(protocol.METHOD_CHAT, biz, model, timeout=seconds))
        node = await _deadline(call, seconds, model)
        response = transforms.chat_model_response(node, model_response, model)
        cost = await gateway.achat_cost(node.get("usage") or {}, node.get("actions"))  # billed, whatever the check says
        transforms.check_structured(model, biz, response.choices[0].message.content if response.choices else None)
        return _with_cost(response, cost)

    def streaming(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,
                  model_response: ModelResponse, print_verbose: Any, encoding: Any, api_key: Any,
                  logging_obj: Any, optional_params: dict, acompletion: Any = None,
                  litellm_params: Any = None, logger_fn: Any = None, headers: Any = None,
                  timeout: Any = None, client: Any = None) -> Iterator[GenericStreamingChunk]:
        gateway, biz, auth = self._chat(model, messages, optional_params, litellm_params, api_base, api_key,
                                        logging_obj, stream=True)
        transformer, tally = transforms.StreamTransformer(), _StreamTally()
        token = gateway.stream_token(auth)
        for chunk in gateway.stream(biz, model, timeout=_seconds(timeout), auth_token=token):
            yield from tally.release(transformer.chunks(chunk), chunk)
        usage, actions = tally.priced()
        cost = gateway.chat_cost(usage, actions)
        _record_stream(logging_obj, transformer.final_fields, cost)
        transforms.check_structured(model, biz, "".join(transformer.text) if transformer.text else None)
        yield from tally.finish(cost)

    async def astreaming(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,
                         model_response: ModelResponse, print_verbose: Any, encoding: Any, api_key: Any,
                         logging_obj: Any, optional_params: dict, acompletion: Any = None,
                         litellm_params: Any = None, logger_fn: Any = None, headers: Any = None,
                         timeout: Any = None, client: Any = None) -> AsyncIterator[GenericStreamingChunk]:
        gateway, biz, auth = self._chat(model, messages, optional_params, litellm_params, api_base, api_key,
                                        logging_obj, stream=True)
        transformer, tally = transforms.StreamTransformer(), _StreamTally()
        token = await gateway.astream_token(auth)
        async for chunk in gateway.astream(biz, model, timeout=_seconds(timeout), auth_token=token):
            for out in tally.release(transformer.chunks(chunk), chunk):
                yield out
        usage, actions = tally.priced()
        cost = await gateway.achat_cost(usage, actions)
        _record_stream(logging_obj, transformer.final_fields, cost)
        transforms.check_structured(model, biz, "".join(transformer.text) if transformer.text else None)
        for out in tally.finish(cost):
            yield out

    # -------------------------------------------------------------------------------- embeddings
    def _embed_setup(self, model: str, input: Any, optional_params: dict, litellm_params: Any,
                     api_base: str | None, api_key: str | None, logging_obj: Any
                     ) -> tuple[Gateway, list[dict]]:
        gateway, request = self._setup(model, optional_params, litellm_params, api_base, api_key)
        self._end_user(request, logging_obj, litellm_params)
        batches = transforms.embed_biz_contents(
            model, input, request, drop_params=self._drop_params(litellm_params)
        )
        return gateway, batches

    def embedding(self, model: str, input: list, model_response: EmbeddingResponse, print_verbose: Any,
                  logging_obj: Any, optional_params: dict, api_key: str | None = None,
                  api_base: str | None = None, timeout: Any = None, litellm_params: Any = None
                  ) -> EmbeddingResponse:
        gateway, batches = self._embed_setup(model, input, optional_params, litellm_params, api_base,
                                             api_key, logging_obj)
        seconds = _seconds(timeout)
        nodes = [gateway.call(protocol.METHOD_EMBED, biz, model, timeout=seconds) for biz in batches]
        response = transforms.embedding_response(nodes, model_response, model)
        return _with_cost(response, gateway.embedding_cost([n.get("usage") or {} for n in nodes]))

    async def aembedding(self, model: str, input: list, model_response: EmbeddingResponse,
                         print_verbose: Any, logging_obj: Any, optional_params: dict,
                         api_key: str | None = None, api_base: str | None = None, timeout: Any = None,
                         litellm_params: Any = None) -> EmbeddingResponse:
        gateway, batches = self._embed_setup(model, input, optional_params, litellm_params, api_base,
                                             api_key, logging_obj)
        seconds = _seconds(timeout)
        calls = [gateway.acall(protocol.METHOD_EMBED, biz, model, timeout=seconds) for biz in batches]
        nodes = await _deadline(asyncio.gather(*calls), seconds, model)
        response = transforms.embedding_response(list(nodes), model_response, model)
        return _with_cost(response, await gateway.aembedding_cost([n.get("usage") or {} for n in nodes]))


def out_request_no(app_id: str, litellm_params: dict | None, logging_obj: Any) -> str:
    """The idempotency key of the logical request, the same for every retry and fallback of it.

    The Router sets ``litellm_trace_id`` once per logical request and keeps it through its retries
    and fallbacks (the proxy goes through the Router too), so the key derived from it is stable and
    the gateway executes a payment action at most once. Without a Router, the call id is used.
    """
    params = litellm_params or {}
    details = getattr(logging_obj, "model_call_details", None) or {}
    seed = params.get("litellm_trace_id") or details.get("litellm_trace_id") or params.get(
        "litellm_call_id") or details.get("litellm_call_id")
    if not seed:
        import uuid

        seed = uuid.uuid4().hex
    return "LT" + hashlib.sha256(f"{app_id}:{seed}".encode()).hexdigest()[:40]


def _check_residency(settings: AlipaySettings, litellm_params: dict | None) -> None:
    """Before anything is built or sent: a request residency forbids never reaches the gateway."""
    if settings.residency_regions:
        residency.check(residency.request_metadata(litellm_params), settings.residency_regions,
                        metadata_key=settings.residency_metadata_key,
                        consent_key=settings.residency_consent_key)


class _StreamTally:
    """Holds back a stream's finishing chunks until the stream has ended (its signature verified), then
    puts the call's cost on them.

    Why ``usage["cost"]``: LiteLLM 1.106.2 drops a custom provider's final ``ModelResponseStream`` when it
    has no text (its ``_hidden_params["response_cost"]`` with it), but it carries a usage block's ``cost``
    into the assembled response's ``response_cost`` — what callbacks, spend logs and budgets read. The CNY
    figure and breakdown stay server-side (``_record_stream`` below): every client of a proxy would see
    them in the stream otherwise.
    """

    def __init__(self) -> None:
        self._priced: list[dict[str, Any]] = []  # only the B3 chunks with usage or actions
        self._held: list[GenericStreamingChunk] = []

    def release(self, out: list[GenericStreamingChunk], chunk: dict[str, Any]) -> list[GenericStreamingChunk]:
        """The chunks to yield now; from the finishing one on, everything is held."""
        if chunk.get("usage") or chunk.get("actions"):
            self._priced.append(chunk)
        if self._held or any(c.get("is_finished") for c in out):
            self._held.extend(out)
            return []
        return out

    def priced(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return stream_usage(self._priced)

    def finish(self, cost: Cost) -> list[GenericStreamingChunk]:
        held, self._held = self._held, []
        if not held:  # a stream that never said it finished: the cost still needs a carrier
            held = [GenericStreamingChunk(text="", tool_use=None, is_finished=True, finish_reason="stop",
                                          usage=None, index=0)]
        last = held[-1]
        usage: dict[str, Any] = dict(last.get("usage") or {"prompt_tokens": 0, "completion_tokens": 0,
                                                           "total_tokens": 0})
        usage["cost"] = cost.usd
        last["usage"] = usage  # type: ignore[typeddict-item]
        return held


def _with_cost(response: Any, cost: Any) -> Any:
    """LiteLLM takes ``response_cost`` from hidden params over any price table: spend logs and
    budgets then see Alipay's own pricing in USD, with the CNY figure and breakdown beside it."""
    hidden = response._hidden_params
    hidden["response_cost"] = cost.usd
    alipay = dict(hidden.get("alipay") or {})
    alipay.update(cost_cny=cost.cny, cost_breakdown=cost.breakdown)
    hidden["alipay"] = alipay
    return response


def _record_stream(logging_obj: Any, fields: dict[str, Any], cost: Cost) -> None:
    """A stream's Alipay fields and CNY cost, where callbacks (the ledger) read them: the call's logging
    details, which LiteLLM hands every success callback as ``kwargs`` — never the client's stream."""
    details = getattr(logging_obj, "model_call_details", None)
    if isinstance(details, dict):
        details["alipay"] = {**fields, "cost_cny": cost.cny, "cost_breakdown": cost.breakdown}


def _seconds(timeout: Any) -> float | None:
    """LiteLLM hands a float, an ``httpx.Timeout`` or None; the Router's default is 6000 s."""
    if timeout is None:
        return None
    value = getattr(timeout, "read", timeout)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


async def _deadline(awaitable: Any, seconds: float | None, model: str) -> Any:
    """LiteLLM does not enforce ``timeout`` for custom handlers: the whole call gets it as a deadline."""
    if seconds is None:
        return await awaitable
    try:
        if _timeout_scope is not None:  # 3.11+: a timer on this task, no extra task per call
            async with _timeout_scope(seconds):
                return await awaitable
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        raise local_error(ReadTimeoutError(f"no answer within the call's timeout of {seconds:g} s"),
                          model=model, provider=PROVIDER) from None


_timeout_scope = getattr(asyncio, "timeout", None)

alipay_llm = AlipayLLM()


def register(handler: AlipayLLM | None = None) -> AlipayLLM:
    """Make ``alipay/…`` models available to ``litellm.completion`` and Routers; idempotent."""
    handler = handler or alipay_llm
    litellm.custom_provider_map = [
        entry for entry in litellm.custom_provider_map if entry.get("provider") != PROVIDER
    ] + [{"provider": PROVIDER, "custom_handler": handler}]
    from litellm.utils import custom_llm_setup

    custom_llm_setup()
    return handler
