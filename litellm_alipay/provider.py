"""The LiteLLM face: a thin ``CustomLLM`` whose every method delegates to the gateway adapter.

It knows LiteLLM's calling conventions (keyword arguments, settings in ``optional_params``, the end
user in the logging object, ``timeout`` that LiteLLM does not enforce for custom handlers) and nothing
of the wire protocol.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import cachetools
import litellm
from litellm.llms.custom_llm import CustomLLM
from litellm.types.utils import EmbeddingResponse, GenericStreamingChunk, ModelResponse

from . import transforms, trust
from .action_ledger import ActionClaim, Claim, Slot
from .action_ledger import aholding as _aholding
from .backends import actions as action_loop
from .backends import ant_ling_route, gateway_actions
from .backends.ant_ling import ANT_LING
from .backends.gateway import Gateway
from .backends.user_auth import USER_AUTH_PARAMS, UserAuth
from .billing.carry import StreamTally as _StreamTally
from .billing.carry import record_stream as _record_stream
from .billing.carry import with_cost as _with_cost
from .billing.pricing import Cost
from .catalogue import register_models
from .errors import PROVIDER, AlipayError, ConfigurationError, TenantMismatchError, local_error
from .settings import CACHE_SIZE, AlipaySettings, settings_for, split_params
from .transport.sync_driver import SYNC
from .transport.timing import timed
from .wire import protocol

#: What a replayed answer costs: nothing was sent, no model was asked, no action moved money again.
REPLAY_COST = Cost(usd=0.0, cny=0.0, breakdown={"replayed": True, "total_cny": 0.0, "total_usd": 0.0})

#: Checks every gateway call passes before anything is built or sent, by the setting that turns each on.
#: Operations features plug theirs in (``ops.install``: residency); the provider imports none of them.
PRE_SEND_CHECKS: dict[str, Callable[[AlipaySettings, dict | None], None]] = {}


class AlipayLLM(CustomLLM):
    """Alipay's AI gateway as a LiteLLM provider: ``model="alipay/<model>"``."""

    def __init__(self) -> None:
        super().__init__()
        # id(settings) -> (settings, gateway); bounded like the settings cache it mirrors.
        self._gateways: cachetools.LRUCache[int, tuple[AlipaySettings, Gateway]] = cachetools.LRUCache(CACHE_SIZE)
        self._lock = threading.Lock()
        register_models()  # the proxy builds this handler from its config without calling register()

    # --------------------------------------------------------------------------------- plumbing
    def _gateway(self, settings: AlipaySettings) -> Gateway:
        with self._lock:  # an id may be reused once its settings are gone: the entry must hold *these* settings
            found = self._gateways.get(id(settings))
            if found is None or found[0] is not settings:
                found = self._gateways[id(settings)] = (settings, Gateway(settings, PROVIDER))
            return found[1]

    def _setup(self, model: str, optional_params: dict, litellm_params: dict | None,
               api_base: str | None, api_key: str | None, logging_obj: Any = None
               ) -> tuple[Gateway, dict[str, Any], trust.ClientRequest | None]:
        """The deployment's gateway and the request's own parameters.

        A proxy client's body is checked first: a deployment setting in it is refused before anything
        is built (the Router merged the client's values over the deployment's, so they cannot be used).
        """
        client = trust.client_request(litellm_params)
        try:
            if client is not None:
                trust.refuse_client_settings(client.body)
            given, request = split_params(optional_params)
            if api_base:
                given.setdefault("api_base", api_base)
            if api_key:
                given.setdefault("api_key", api_key)
            if (litellm_params or {}).get("ssl_verify") is not None:  # LiteLLM keeps ssl_verify as its own
                given.setdefault("ssl_verify", litellm_params["ssl_verify"])  # type: ignore[index]
            settings = settings_for(given)
            _check_residency(settings, litellm_params)
        except AlipayError as exc:
            raise local_error(exc, model=model, provider=PROVIDER) from None
        finally:
            trust.scrub_for_callbacks(logging_obj)
        return self._gateway(settings), request, client

    def _ant_ling(self, model: str, optional_params: dict, litellm_params: dict | None, api_base: str | None,
                  api_key: str | None, logging_obj: Any) -> tuple[Any, dict[str, Any]] | None:
        """The Ant Ling backend and request when it serves this deployment (backends/), else None.

        The trust boundary comes first: a client body naming a setting (``backend`` included) is refused
        before it can choose anything. Per-call parameters of the gateway backend (user credentials,
        ``allowed_actions``, ``out_request_no``) are not sent there: ``allowed_actions`` makes the provider
        run the action loop itself (``backends/actions.py``), under the request's idempotency key.
        """
        route = None
        try:
            client = trust.client_request(litellm_params)
            if client is not None:
                trust.refuse_client_settings(client.body)
            route = ant_ling_route(model, optional_params, api_base, api_key)
            if route is not None:
                request = route[1]
                self._end_user(request, logging_obj, litellm_params)
                plan = _action_plan(request, client, litellm_params, logging_obj)
                for name in trust.PER_CALL_PARAMS & request.keys():
                    del request[name]
                if plan is not None:
                    request[action_loop.PLAN] = plan
        except AlipayError as exc:
            raise local_error(exc, model=model, provider=PROVIDER) from None
        finally:
            if route is not None:
                trust.scrub_for_callbacks(logging_obj)
        return route

    @staticmethod
    def _drop_params(litellm_params: dict | None) -> bool:
        return bool((litellm_params or {}).get("drop_params") or litellm.drop_params)

    @staticmethod
    def _end_user(request: dict, logging_obj: Any, litellm_params: dict | None) -> None:
        """LiteLLM consumes ``user`` before a custom provider sees it; recover it for ``user_id``.

        Through a proxy whose key the operator bound to an Alipay user (key metadata ``alipay_user_id``),
        that user is the tenant, and a request naming another one is refused.
        """
        bound = trust.authenticated_tenant(litellm_params)
        details = getattr(logging_obj, "model_call_details", None) or {}
        metadata = (litellm_params or {}).get("metadata") or {}
        user = (request.get("user") or request.get("user_id") or details.get("user")
                or metadata.get("user_api_key_end_user_id"))
        if bound is not None:
            if user and str(user) != bound:
                raise TenantMismatchError(f"this key acts for its own user only, not {str(user)!r}")
            user = bound
            request.pop("user_id", None)
        if user and not (request.get("user") or request.get("user_id")):
            request["user"] = user
        elif bound is not None:
            request["user"] = bound

    def _chat(self, model: str, messages: list, optional_params: dict, litellm_params: dict | None,
              api_base: str | None, api_key: str | None, logging_obj: Any,
              stream: bool) -> tuple[Gateway, dict[str, Any], UserAuth | None, ActionClaim | None]:
        gateway, request, client = self._setup(model, optional_params, litellm_params, api_base, api_key,
                                               logging_obj)
        request.pop("stream", None)
        metadata = (litellm_params or {}).get("metadata") or {}
        try:
            trust.redeem_credentials(request)
            self._end_user(request, logging_obj, litellm_params)
            actions = trust.effective_actions(request.pop("allowed_actions", None),
                                              metadata.get(trust.CLIENT_ACTIONS_KEY))
        except AlipayError as exc:
            raise local_error(exc, model=model, provider=PROVIDER) from None
        if actions:
            request["allowed_actions"] = actions
        user_auth = {name: request.pop(name) for name in USER_AUTH_PARAMS if name in request}
        biz = transforms.chat_biz_content(
            model, messages, request, drop_params=self._drop_params(litellm_params)
        )
        auth = UserAuth.from_params(user_auth, biz.get("user_id"), gateway.settings.app_id)
        held = None
        if biz.get("allowed_actions"):
            biz.update(gateway_actions.limits(gateway.settings))  # B5: the gateway keeps within them too
            held = self._action_claim(gateway, biz, client, metadata, litellm_params, logging_obj, model)
            biz["out_request_no"] = held.claim.out_request_no
        if stream:
            biz["stream"] = True
        return gateway, biz, auth, held

    @staticmethod
    def _action_claim(gateway: Gateway, biz: dict, client: trust.ClientRequest | None, metadata: dict,
                      litellm_params: dict | None, logging_obj: Any, model: str) -> ActionClaim:
        """The request's ``out_request_no`` and the claim that keeps it to one app and one request.

        The key is scoped to the caller (the proxy key and the tenant), so two clients choosing the same
        ``Idempotency-Key`` never share an action; the fingerprint (messages and actions) refuses a key
        reused for a different request.
        """
        app_id = gateway.settings.app_id
        try:
            key = trust.action_key(client, litellm_params, biz.get("out_request_no"),
                                   _trace_id(litellm_params, logging_obj), biz.get("user_id"))
        except AlipayError as exc:
            raise local_error(exc, model=model, provider=PROVIDER) from None
        number = key.out_request_no(app_id)
        claim = Claim(app_id, number, trust.fingerprint(biz))
        caller = trust.caller_scope(litellm_params, biz.get("user_id")).partition("|")[0]
        return ActionClaim(key.claim_key, claim, gateway_actions.holds(gateway.settings, caller))

    @staticmethod
    async def _aexchange(gateway: Gateway, biz: dict, auth: UserAuth | None, held: ActionClaim | None, model: str,
                         deadline: Any) -> tuple[dict[str, Any], bool]:
        """``(node, replayed)``: the gateway's answer, or — for an action-bearing request an earlier attempt
        under the same key already answered — that recorded answer, with nothing sent."""
        async with _aholding(held, model, _lease(deadline)) as slot:
            if slot is not None and slot.replay is not None:
                gateway_actions.audit_replay(gateway.settings, held, slot.replay, model=model)
                return slot.replay, True
            gateway_actions.audit_attempt(gateway.settings, held, model=model)
            node = await (gateway.acall_as_user(protocol.METHOD_CHAT, biz, model, auth, deadline=deadline) if auth
                          else gateway.acall(protocol.METHOD_CHAT, biz, model, deadline=deadline))
            if slot is not None:
                await _settle_actions(gateway, slot, node, model)
            return node, False

    # -------------------------------------------------------------------------------------- chat
    @timed  # the upstream exchanges' time, for LiteLLM's overhead (transport/timing.py)
    def completion(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,
                   model_response: ModelResponse, print_verbose: Any, encoding: Any, api_key: Any,
                   logging_obj: Any, optional_params: dict, acompletion: Any = None,
                   litellm_params: Any = None, logger_fn: Any = None, headers: Any = None,
                   timeout: Any = None, client: Any = None) -> ModelResponse:
        if ling := self._ant_ling(model, optional_params, litellm_params, api_base, api_key, logging_obj):
            return action_loop.face(ling).completion(*ling, model_response=model_response, model=model,
                                                     messages=messages, drop_params=self._drop_params(litellm_params),
                                                     timeout=_seconds(timeout))
        gateway, biz, auth, held = self._chat(model, messages, optional_params, litellm_params, api_base, api_key,
                                              logging_obj, stream=False)
        deadline = gateway.deadline_for(_seconds(timeout))
        node, replayed = SYNC.run(self._aexchange(gateway, biz, auth, held, model, deadline))
        response = transforms.chat_model_response(node, model_response, model)
        # billed, whatever the structure check says; a replay costs nothing
        cost = REPLAY_COST if replayed else gateway.chat_cost(node.get("usage") or {}, node.get("actions"))
        transforms.check_structured(model, biz, response.choices[0].message.content if response.choices else None)
        return transforms.dropped_report(_with_cost(response, cost))

    @timed
    async def acompletion(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,
                          model_response: ModelResponse, print_verbose: Any, encoding: Any, api_key: Any,
                          logging_obj: Any, optional_params: dict, acompletion: Any = None,
                          litellm_params: Any = None, logger_fn: Any = None, headers: Any = None,
                          timeout: Any = None, client: Any = None) -> ModelResponse:
        if ling := self._ant_ling(model, optional_params, litellm_params, api_base, api_key, logging_obj):
            return await action_loop.face(ling).acompletion(*ling, model_response=model_response, model=model,
                                              messages=messages, drop_params=self._drop_params(litellm_params),
                                              timeout=_seconds(timeout))
        gateway, biz, auth, held = self._chat(model, messages, optional_params, litellm_params, api_base, api_key,
                                              logging_obj, stream=False)
        deadline = gateway.deadline_for(_seconds(timeout))
        node, replayed = await self._aexchange(gateway, biz, auth, held, model, deadline)
        response = transforms.chat_model_response(node, model_response, model)
        # billed, whatever the structure check says; a replay costs nothing
        cost = REPLAY_COST if replayed else await gateway.achat_cost(node.get("usage") or {}, node.get("actions"))
        transforms.check_structured(model, biz, response.choices[0].message.content if response.choices else None)
        return transforms.dropped_report(_with_cost(response, cost))

    @timed
    def streaming(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,
                  model_response: ModelResponse, print_verbose: Any, encoding: Any, api_key: Any,
                  logging_obj: Any, optional_params: dict, acompletion: Any = None,
                  litellm_params: Any = None, logger_fn: Any = None, headers: Any = None,
                  timeout: Any = None, client: Any = None) -> Iterator[GenericStreamingChunk]:
        if ling := self._ant_ling(model, optional_params, litellm_params, api_base, api_key, logging_obj):
            yield from action_loop.face(ling).streaming(*ling, model=model, messages=messages,
                                          drop_params=self._drop_params(litellm_params), timeout=_seconds(timeout))
            return
        gateway, biz, auth, held = self._chat(model, messages, optional_params, litellm_params, api_base, api_key,
                                              logging_obj, stream=True)
        yield from SYNC.iterate(self._agateway_stream(gateway, biz, auth, held, model, timeout, logging_obj))

    @timed
    async def astreaming(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,
                         model_response: ModelResponse, print_verbose: Any, encoding: Any, api_key: Any,
                         logging_obj: Any, optional_params: dict, acompletion: Any = None,
                         litellm_params: Any = None, logger_fn: Any = None, headers: Any = None,
                         timeout: Any = None, client: Any = None) -> AsyncIterator[GenericStreamingChunk]:
        if ling := self._ant_ling(model, optional_params, litellm_params, api_base, api_key, logging_obj):
            async for out in action_loop.face(ling).astreaming(*ling, model=model, messages=messages,
                                                 drop_params=self._drop_params(litellm_params),
                                                 timeout=_seconds(timeout)):
                yield out
            return
        gateway, biz, auth, held = self._chat(model, messages, optional_params, litellm_params, api_base, api_key,
                                              logging_obj, stream=True)
        async for out in self._agateway_stream(gateway, biz, auth, held, model, timeout, logging_obj):
            yield out

    @staticmethod
    async def _agateway_stream(gateway: Gateway, biz: dict, auth: UserAuth | None, held: ActionClaim | None,
                               model: str, timeout: Any, logging_obj: Any) -> AsyncIterator[GenericStreamingChunk]:
        """A gateway stream, under the request's claim when it bears actions: recorded before its last chunk
        is released, replayed (as one text chunk and the finishing chunk, nothing sent) on a retry."""
        transformer, tally = transforms.StreamTransformer(), _StreamTally()
        deadline = gateway.deadline_for(_seconds(timeout), stream=True)
        async with _aholding(held, model, _lease(deadline)) as slot:
            if slot is not None and slot.replay is not None:
                gateway_actions.audit_replay(gateway.settings, held, slot.replay, model=model)
                for out in _replay_chunks(slot.replay):
                    yield out
                _record_stream(logging_obj, transforms.alipay_fields(slot.replay), REPLAY_COST)
                for out in tally.finish(REPLAY_COST):
                    yield out
                return
            gateway_actions.audit_attempt(gateway.settings, held, model=model)
            token = await gateway.astream_token(auth, model, deadline)
            async for chunk in gateway.astream(biz, model, deadline=deadline, auth_token=token):
                for out in tally.release(transformer.chunks(chunk), chunk):
                    yield out
            usage, actions = tally.priced()
            if slot is not None:
                await _settle_actions(gateway, slot, _streamed_node(transformer, usage, actions), model)
        cost = await gateway.achat_cost(usage, actions)
        _record_stream(logging_obj, transformer.final_fields, cost)
        transforms.check_structured(model, biz, "".join(transformer.text) if transformer.text else None)
        for out in tally.finish(cost):
            yield out

    # -------------------------------------------------------------------------------- embeddings
    def _embed_setup(self, model: str, input: Any, optional_params: dict, litellm_params: Any,
                     api_base: str | None, api_key: str | None, logging_obj: Any
                     ) -> tuple[Gateway, list[dict]]:
        if self._ant_ling(model, optional_params, litellm_params, api_base, api_key, logging_obj):
            raise ANT_LING.no_embeddings(model)
        gateway, request, _ = self._setup(model, optional_params, litellm_params, api_base, api_key, logging_obj)
        try:
            self._end_user(request, logging_obj, litellm_params)
        except AlipayError as exc:
            raise local_error(exc, model=model, provider=PROVIDER) from None
        batches = transforms.embed_biz_contents(
            model, input, request, drop_params=self._drop_params(litellm_params)
        )
        proxied = (litellm_params or {}).get("proxy_server_request") or {}
        transforms.note_dropped_by_litellm(proxied.get("body") or {})  # LiteLLM dropped them before us
        return gateway, batches

    @timed
    def embedding(self, model: str, input: list, model_response: EmbeddingResponse, print_verbose: Any,
                  logging_obj: Any, optional_params: dict, api_key: str | None = None,
                  api_base: str | None = None, timeout: Any = None, litellm_params: Any = None
                  ) -> EmbeddingResponse:
        gateway, batches = self._embed_setup(model, input, optional_params, litellm_params, api_base,
                                             api_key, logging_obj)
        deadline = gateway.deadline_for(_seconds(timeout))  # one deadline for every batch
        nodes = [gateway.call(protocol.METHOD_EMBED, biz, model, deadline=deadline) for biz in batches]
        response = transforms.embedding_response(nodes, model_response, model)
        return transforms.dropped_report(
            _with_cost(response, gateway.embedding_cost([n.get("usage") or {} for n in nodes])))

    @timed
    async def aembedding(self, model: str, input: list, model_response: EmbeddingResponse,
                         print_verbose: Any, logging_obj: Any, optional_params: dict,
                         api_key: str | None = None, api_base: str | None = None, timeout: Any = None,
                         litellm_params: Any = None) -> EmbeddingResponse:
        gateway, batches = self._embed_setup(model, input, optional_params, litellm_params, api_base,
                                             api_key, logging_obj)
        deadline = gateway.deadline_for(_seconds(timeout))  # one deadline for every batch
        nodes = await asyncio.gather(*[gateway.acall(protocol.METHOD_EMBED, biz, model, deadline=deadline)
                                       for biz in batches])
        response = transforms.embedding_response(list(nodes), model_response, model)
        return transforms.dropped_report(
            _with_cost(response, await gateway.aembedding_cost([n.get("usage") or {} for n in nodes])))


def _lease(deadline: float) -> float:
    """How long an attempt holds its request in the money ledger: its own deadline, and a margin."""
    import time

    return max(deadline - time.monotonic(), 0.0) + 10.0


async def _settle_actions(gateway: Gateway, slot: Slot, node: dict[str, Any], model: str) -> None:
    """Before the answer returns: its actions checked against the deployment's limits (alert + audit on a
    breach), the answer recorded for every later attempt, the day caps' holds settled to what moved."""
    actions = node.get("actions") or []
    problems = gateway_actions.check(gateway.settings, actions, model=model, trace_id=node.get("trace_id"))
    await slot.record(node, gateway_actions.executed_cents(actions))
    gateway_actions.audit(gateway.settings, actions, model=model, trace_id=node.get("trace_id"), problems=problems)


def _streamed_node(transformer: Any, usage: dict[str, Any], actions: list[dict[str, Any]]) -> dict[str, Any]:
    """What a finished stream said, as the node a replay answers with."""
    fields = transformer.final_fields or {}
    return {"trace_id": fields.get("trace_id"), "actions": actions, "usage": usage,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "".join(transformer.text)}}]}


def _replay_chunks(node: dict[str, Any]) -> list[GenericStreamingChunk]:
    """A recorded answer as a stream: its text, then the finishing chunk with its (replayed) actions."""
    choice = (node.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    out = []
    if message.get("content"):
        out.append(GenericStreamingChunk(text=message["content"], tool_use=None, is_finished=False,
                                         finish_reason="", usage=None, index=0))
    final = GenericStreamingChunk(text="", tool_use=None, is_finished=True,
                                  finish_reason=choice.get("finish_reason") or "stop", usage=None, index=0)
    final["provider_specific_fields"] = transforms.alipay_fields(node)  # type: ignore[typeddict-unknown-key]
    out.append(final)
    return out


def _action_plan(request: dict, client: trust.ClientRequest | None, litellm_params: dict | None,
                 logging_obj: Any) -> action_loop.ActionPlan | None:
    """For a backend that cannot act itself: the request's effective actions and idempotency key, by the
    gateway's rules (``_action_claim``): the trust boundary's key order, scoped to the caller; the loop
    claims it for the payments app with the request's fingerprint."""
    metadata = (litellm_params or {}).get("metadata") or {}
    allowed = trust.effective_actions(request.get("allowed_actions"), metadata.get(trust.CLIENT_ACTIONS_KEY))
    if not allowed:
        return None
    names = action_loop.action_names(allowed)
    trace = _trace_id(litellm_params, logging_obj)
    key = trust.action_key(client, litellm_params, request.get("out_request_no"), trace, request.get("user"))
    app_id = action_loop.toolkit_for(names).settings.app_id
    return action_loop.ActionPlan(names, key.out_request_no(app_id), request.get("user"), trace, key.claim_key,
                                  app_id, trust.caller_scope(litellm_params, request.get("user")))


def _trace_id(litellm_params: dict | None, logging_obj: Any) -> str | None:
    """The logical request's id: the Router's ``litellm_trace_id`` (kept through its retries and
    fallbacks, the proxy's included), else the call id of a plain ``litellm.completion``."""
    params = litellm_params or {}
    details = getattr(logging_obj, "model_call_details", None) or {}
    return (params.get("litellm_trace_id") or details.get("litellm_trace_id") or params.get("litellm_call_id")
            or details.get("litellm_call_id"))


def _check_residency(settings: AlipaySettings, litellm_params: dict | None) -> None:
    """Before anything is built or sent: a request residency forbids never reaches the gateway. Fails
    closed: guarded regions with no guard plugged in refuse every call rather than send unguarded."""
    if settings.residency_regions and "residency_regions" not in PRE_SEND_CHECKS:
        raise ConfigurationError("residency_regions", "is set but the residency guard is not installed: "
                                 "use litellm_alipay.register() (or litellm_alipay.ops.install())")
    for check in PRE_SEND_CHECKS.values():
        check(settings, litellm_params)


def _seconds(timeout: Any) -> float | None:
    """The caller's own timeout, or None. LiteLLM hands a float, an ``httpx.Timeout`` or None, and fills in
    its defaults (600 s for ``completion``, ``litellm.request_timeout`` = 6000 s through a Router) when
    the caller gave none: those mean "not given", so the deployment's budget applies."""
    if timeout is None:
        return None
    value = getattr(timeout, "read", timeout)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if seconds in (600.0, 6000.0) or seconds == float(getattr(litellm, "request_timeout", 6000) or 6000):
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


alipay_llm = AlipayLLM()


def register(handler: AlipayLLM | None = None) -> AlipayLLM:
    """Make ``alipay/…`` models available to ``litellm.completion`` and Routers; idempotent."""
    handler = handler or alipay_llm
    from .trust_hooks import trust_boundary

    trust.install_secret_filter()
    if trust_boundary not in litellm.callbacks:  # a Router's fallbacks then never get our per-call params
        litellm.callbacks.append(trust_boundary)
    litellm.custom_provider_map = [
        entry for entry in litellm.custom_provider_map if entry.get("provider") != PROVIDER
    ] + [{"provider": PROVIDER, "custom_handler": handler}]
    from litellm.utils import custom_llm_setup

    custom_llm_setup()
    return handler
