"""Payment actions inside an ``alipay/`` call, for a backend that cannot execute them itself (Ant Ling).

The gateway model executes ``allowed_actions`` on Alipay's side and reports them in ``actions``. An Ant
Ling model only proposes tool calls, so for a deployment with ``allowed_actions`` the provider runs the
loop here: offer the enabled payment tools beside the caller's own, execute the model's calls through
the payment toolkit (policy, caps, confirmation, at most once, audit), feed the results back, and
answer with the final message, the executed actions in the gateway's ``actions`` shape and the
gateway's 0.6 % action fee on top of the tokens' price — streamed or not.

Bounds: at most ``action_max_steps`` model calls, all inside the call's one deadline (its ``timeout``,
else the deployment's ``read_timeout``); past the deadline the call is a ``litellm.Timeout`` and a retry
under the same idempotency key finds what already happened instead of repeating it. The key is the
request's, chosen by the trust boundary's rule (``trust.idempotency_seed``): the model never picks one.

A model message that calls one of the caller's own tools goes back to the caller with those calls only
(payment calls in the same message are not executed: the model asks again next turn). With
confirmation required, the answer carries the pending proposal (``status: PENDING_CONFIRMATION``);
its token is in ``_hidden_params["alipay"]["confirmation_tokens"]`` for the in-process caller, never in
the message or a callback payload, and ``aconfirm(token)`` executes it once.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from litellm.types.utils import GenericStreamingChunk, ModelResponse

from ..billing.pricing import Cost, PricingConfig, action_fees
from ..errors import ConfigurationError, ReadTimeoutError, local_error
from ..payments.policy import ACTIONS, POLICY_ENV, READ_ONLY
from ..transforms import ant_ling as shapes
from ..transport.sync_driver import SYNC

PROVIDER = "alipay"
#: where the provider leaves the request's plan for the loop (popped before anything is sent)
PLAN = "_alipay_action_plan"


@dataclass(frozen=True)
class ActionPlan:
    """What one request may do: the effective actions and its idempotency key (never the model's)."""

    actions: tuple[str, ...]
    idempotency_key: str = field(repr=False)
    tenant: str | None = None
    trace_id: str | None = None
    claim_key: str = field(default="", repr=False)  # the caller-scoped seed, as the gateway's claim names it
    app_id: str = ""  # the payments app the key is claimed for
    scope: str = field(default="-|-", repr=False)  # who owns the key: the proxy key's hash and the tenant


def action_names(allowed: list[str]) -> tuple[str, ...]:
    """``allowed_actions`` as toolkit actions: the gateway's ``REFUND`` style, tool names or method names."""
    by_method = {method: name for name, method in ACTIONS.items()}
    out = []
    for raw in allowed:
        name = raw.strip().lower() if raw.strip().lower() in ACTIONS else by_method.get(raw.strip())
        if name is None:
            raise ConfigurationError("allowed_actions", f"{raw!r} is not a payment action the Ant Ling loop can "
                                                        f"run ({', '.join(sorted(ACTIONS))})")
        out.append(name)
    return tuple(dict.fromkeys(out))


# ---------------------------------------------------------------------------------- the toolkit
_toolkits: dict[tuple, Any] = {}
_lock = threading.Lock()


def toolkit_for(actions: tuple[str, ...], env: Mapping[str, str] | None = None) -> Any:
    """The payment toolkit the loop executes through: the Alipay app of the ``ALIPAY_*`` environment (the
    same settings as the MCP server), the policy's caps and confirmation from ``ALIPAY_PAYMENTS_*``, the
    enabled actions from the deployment's ``allowed_actions``. One per configuration, so a proposal made
    in one call is confirmed from the same store."""
    from ..payments.mcp_server import AUDIT_ENV, official_env, toolkit_from_env

    env = official_env(os.environ if env is None else env)
    env[POLICY_ENV["enabled_actions"]] = ",".join(a for a in actions if a not in READ_ONLY)
    fingerprint = tuple(sorted((k, v) for k, v in env.items() if k.startswith(("ALIPAY_", "AP_")))) + (AUDIT_ENV,)
    found = _toolkits.get(fingerprint)
    if found is None:
        built = toolkit_from_env(env)
        with _lock:
            found = _toolkits.setdefault(fingerprint, built)
    return found


async def aconfirm(token: str) -> Any:
    """Execute a proposal an action loop returned (its token from ``confirmation_tokens``), once."""
    from ..payments.policy import PolicyError

    for kit in list(_toolkits.values()):
        try:
            return await kit.aconfirm(token)
        except PolicyError:
            continue
    raise PolicyError("confirmation_token", "no pending proposal for this confirmation token (wrong, used or "
                                            "expired)")


def confirm(token: str) -> Any:
    return SYNC.run(aconfirm(token))


# ------------------------------------------------------------------------------------- the loop
@dataclass
class _Run:
    """The state of one loop: the conversation so far, usage, actions, proposals."""

    messages: list[Any]
    prompt: int = 0
    completion: int = 0
    cached: int = 0
    steps: int = 0
    actions: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    stopped: str | None = None

    def add_usage(self, usage: Any) -> None:
        prompt, completion, cached = shapes.token_counts(usage or {})
        self.prompt, self.completion, self.cached = self.prompt + prompt, self.completion + completion, \
            self.cached + cached

    @property
    def usage(self) -> dict[str, Any]:
        out: dict[str, Any] = {"prompt_tokens": self.prompt, "completion_tokens": self.completion,
                               "total_tokens": self.prompt + self.completion}
        if self.cached:
            out["prompt_tokens_details"] = {"cached_tokens": self.cached}
        return out


def _action(name: str, args: Mapping[str, Any], outcome: Any) -> dict[str, Any]:
    """One money-moving call in the gateway's ``actions`` shape (PROTOCOL B5)."""
    content = outcome.content
    amount = args.get("refund_amount") or args.get("total_amount") or args.get("max_total_amount") \
        or content.get("amount")
    entry: dict[str, Any] = {"action": name.upper(), "out_request_no": content.get("out_request_no"),
                             "trade_no": content.get("trade_no"), "out_trade_no": args.get("out_trade_no"),
                             "amount": str(amount) if amount is not None else None, "currency": "CNY"}
    if outcome.proposal is not None or content.get("order_str"):
        entry["status"] = "PENDING_CONFIRMATION"
        if content.get("order_str"):  # a mandate the user approves in the Alipay app: the caller hands it over
            entry.update(mandate_id=content.get("mandate_id"), order_str=content["order_str"])
    elif content.get("result") == "succeeded":
        entry["status"] = "SUCCESS"
        if content.get("replayed") or content.get("reconciled") or content.get("fund_change") == "N":
            entry["replayed"] = True  # money moved in an earlier attempt of this request, not now
    else:
        entry["status"] = "FAILED"
        entry["error_code"] = content.get("sub_code") or content.get("setting") or content.get("result")
    return entry


class ActionLoop:
    """The LiteLLM face of an Ant Ling deployment with ``allowed_actions``: ``AntLing``'s four methods."""

    async def _arun(self, backend: Any, request: dict[str, Any], *, model: str, messages: list,
                    drop_params: bool, timeout: float | None) -> tuple[dict[str, Any], _Run, Any]:
        """The loop under the request's record in the money ledger: a request under a key whose answer
        is recorded is answered from it (each action ``replayed``, nothing sent, no model asked); one whose
        earlier attempt claimed actions but never answered (a crash, a lost answer) is answered from those
        actions, reconciled; another request under the same key is refused. Only a request with nothing
        recorded runs the loop, and its answer is recorded before it returns."""
        from .. import trust
        from ..action_ledger import ActionClaim, Claim, replayed_node
        from ..action_ledger import aholding as _aholding
        from ..catalogue import ant_ling_spec
        from ..ledger import request_id

        plan: ActionPlan = request[PLAN]
        fingerprint = trust.fingerprint({"messages": messages, "allowed_actions": plan.actions})
        # one record for the request and the actions its toolkit claims, so a failed round never hides them
        held = ActionClaim(plan.claim_key, Claim(plan.app_id, plan.idempotency_key, fingerprint),
                           request_id=request_id(plan.scope, plan.idempotency_key))
        lease = (timeout or backend.settings.read_timeout) + 10.0  # the call's deadline, and a margin
        async with _aholding(held, model, lease) as slot:
            assert slot is not None
            replay = slot.replay
            pending = replay is not None and any(a.get("status") == "PENDING_CONFIRMATION"
                                                 for a in replay.get("actions") or [])
            if (replay is None and not slot.created) or pending:
                # an earlier attempt that never answered, or a proposal confirmed since: what the ledger holds
                recorded = await toolkit_for(plan.actions).arecorded(plan.idempotency_key, plan.scope)
                if recorded:
                    answer = _answer_from_ledger(recorded, confirmed=pending)
                    await slot.record(answer)
                    replay = replayed_node(answer)
            if replay is not None:
                request.pop(PLAN, None)
                return replay, _Run(list(messages), actions=list(replay.get("actions") or [])), ant_ling_spec(model)
            answer, run, spec = await self._aloop(backend, request, model=model, messages=messages,
                                                  drop_params=drop_params, timeout=timeout)
            await slot.record(_recordable(answer, run))
            return answer, run, spec

    async def _aloop(self, backend: Any, request: dict[str, Any], *, model: str, messages: list,
                     drop_params: bool, timeout: float | None) -> tuple[dict[str, Any], _Run, Any]:
        from ..catalogue import ant_ling_spec
        from ..payments.tools import PaymentTools
        from .ant_ling import ANT_LING

        plan: ActionPlan = request.pop(PLAN)
        seconds = timeout or backend.settings.read_timeout
        deadline = time.monotonic() + seconds
        tools = PaymentTools(toolkit_for(plan.actions))
        caller_tools = list(request.pop("tools", None) or [])
        caller_names = {str((t.get("function") or {}).get("name")) for t in caller_tools if isinstance(t, Mapping)}
        ours = [d for d in tools.definitions() if d["function"]["name"] not in caller_names]
        our_names = {d["function"]["name"] for d in ours}
        tenant_key = ANT_LING._tenant(backend, request, model)
        tenant = request.get("user_id") or request.get("user")
        run = _Run(list(messages))
        spec = ant_ling_spec(model)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise local_error(ReadTimeoutError(f"the action loop did not finish within the call's timeout of "
                                                   f"{seconds:g} s"), model=model, provider=PROVIDER)
            body = shapes.chat_request(model, spec, run.messages, {**request, "tools": caller_tools + ours},
                                       drop_params=drop_params, stream=False)
            answer = await backend.acall(body, model, tenant_key, left)  # it enforces ``left`` itself
            run.steps += 1
            run.add_usage(answer.get("usage"))
            choice = (answer.get("choices") or [{}])[0]
            message = choice.get("message") or {}
            calls = message.get("tool_calls") or []
            if not calls:
                return answer, run, spec
            theirs = [c for c in calls if (c.get("function") or {}).get("name") not in our_names]
            if theirs:
                message["tool_calls"] = theirs
                return answer, run, spec
            if run.steps >= backend.settings.action_max_steps:
                run.stopped = "step_limit"
                choice["message"] = {"role": "assistant", "content": (
                    f"Stopped: the action loop reached its step limit (action_max_steps="
                    f"{backend.settings.action_max_steps}) before the model finished; "
                    f"{len(calls)} payment tool call(s) were not executed.")}
                choice["finish_reason"] = "length"
                return answer, run, spec
            run.messages.append({"role": "assistant", "content": message.get("content"), "tool_calls": calls})
            for call in calls:
                left = deadline - time.monotonic()
                outcome = await _within(tools.aexecute(call, idempotency_key=plan.idempotency_key, tenant=tenant,
                                                       trace_id=plan.trace_id, scope=plan.scope, several=True),
                                        left, seconds, model)
                run.messages.append(outcome.message)
                if outcome.name not in READ_ONLY:
                    args = shapes_args(call)
                    run.actions.append(_action(outcome.name, args, outcome))
                if outcome.proposal is not None:
                    run.tokens.append(outcome.proposal.token)

    def _cost(self, backend: Any, spec: Any, run: _Run) -> Cost:
        tokens = backend.cost(spec, run.usage)
        moved = [a for a in run.actions if a.get("status") == "SUCCESS" and not a.get("replayed")]
        fees_cny, priced, unpriced = action_fees(moved, PricingConfig(cny_per_usd=backend.settings.cny_per_usd))
        fees = float(fees_cny)
        breakdown = {**tokens.breakdown, "action_fees": priced, "action_fees_cny": fees,
                     "unpriced_actions": unpriced, "action_loop_steps": run.steps}
        return Cost(usd=tokens.usd + fees / backend.settings.cny_per_usd, cny=tokens.cny + fees, breakdown=breakdown)

    @staticmethod
    def _fields(run: _Run) -> dict[str, Any]:
        loop: dict[str, Any] = {"steps": run.steps}
        if run.stopped:
            loop["stopped"] = run.stopped
        return {"actions": run.actions, "action_loop": loop}

    async def acompletion(self, backend: Any, request: dict[str, Any], *, model: str, messages: list,
                          model_response: ModelResponse, drop_params: bool, timeout: float | None) -> ModelResponse:
        from ..billing.carry import with_cost as _with_cost

        answer, run, spec = await self._arun(backend, request, model=model, messages=messages,
                                             drop_params=drop_params, timeout=timeout)
        answer["usage"] = run.usage
        response = shapes.model_response(answer, model_response)
        message = response.choices[0].message  # type: ignore[union-attr]
        message.provider_specific_fields = {**(message.provider_specific_fields or {}), **self._fields(run)}
        response = _with_cost(response, self._cost(backend, spec, run))
        if run.tokens:
            response._hidden_params["alipay"]["confirmation_tokens"] = list(run.tokens)
        return response

    def completion(self, backend: Any, request: dict[str, Any], **kwargs: Any) -> ModelResponse:
        return SYNC.run(self.acompletion(backend, request, **kwargs))

    async def astreaming(self, backend: Any, request: dict[str, Any], *, model: str, messages: list,
                         drop_params: bool, timeout: float | None) -> AsyncIterator[Any]:
        """The loop runs to its end first (tool steps are not the caller's stream), then the final answer
        is streamed: its text, the caller's tool calls, and the finishing chunk with usage, cost and
        ``actions``."""
        from ..billing.carry import StreamTally as _StreamTally

        answer, run, spec = await self._arun(backend, request, model=model, messages=messages,
                                             drop_params=drop_params, timeout=timeout)
        choice = (answer.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        chunks: list[GenericStreamingChunk] = []
        if message.get("content"):
            chunks.append(GenericStreamingChunk(text=message["content"], tool_use=None, is_finished=False,
                                                finish_reason="", usage=None, index=0))
        for i, call in enumerate(message.get("tool_calls") or []):
            chunks.append(GenericStreamingChunk(text="", tool_use={
                "id": call.get("id"), "type": "function", "index": i,
                "function": {"name": call["function"]["name"], "arguments": call["function"].get("arguments")}},
                is_finished=False, finish_reason="", usage=None, index=0))
        for out in chunks:
            yield out
        final = GenericStreamingChunk(text="", tool_use=None, is_finished=True,
                                      finish_reason=choice.get("finish_reason") or "stop",
                                      usage=run.usage, index=0)  # type: ignore[typeddict-item]
        final["provider_specific_fields"] = self._fields(run)
        tally = _StreamTally()
        tally.release([final], {"usage": run.usage})
        for out in tally.finish(self._cost(backend, spec, run)):
            yield out

    def streaming(self, backend: Any, request: dict[str, Any], **kwargs: Any) -> Iterator[Any]:
        yield from SYNC.iterate(self.astreaming(backend, request, **kwargs))


async def _within(awaitable: Any, left: float, seconds: float, model: str) -> Any:
    """A tool execution inside what is left of the call's deadline; past it, ``litellm.Timeout``."""
    try:
        async with asyncio.timeout(max(left, 0.0)):
            return await awaitable
    except TimeoutError:
        raise local_error(ReadTimeoutError(f"the action loop did not finish within the call's timeout of "
                                           f"{seconds:g} s"), model=model, provider=PROVIDER) from None


def _recordable(answer: dict[str, Any], run: _Run) -> dict[str, Any]:
    """What the ledger keeps of a finished loop: the final choice, the actions, the loop's facts."""
    choice = (answer.get("choices") or [{}])[0]
    return {"id": answer.get("id"), "model": answer.get("model"), "choices": [choice], "actions": run.actions,
            "action_loop": {"steps": run.steps, **({"stopped": run.stopped} if run.stopped else {})}}


def _answer_from_ledger(recorded: list[Any], *, confirmed: bool = False) -> dict[str, Any]:
    """The answer to a retry of a request whose earlier attempt executed actions but never answered (or
    whose proposal was confirmed since): what those actions did, reconciled with Alipay — the model is
    not asked again."""
    actions, lines = [], []
    for args, result in recorded:
        content = result.to_dict()
        name = str(args.get("action") or "refund")  # the toolkit names actions other than a refund
        actions.append(_action(name, args, _Outcome(content)))
        lines.append(f"{name} {content.get('out_request_no')}: {content.get('result')}")
    why = ("This request's proposal was confirmed since it was answered" if confirmed else
           "This request was already being executed by an earlier attempt, which did not finish answering")
    text = f"{why}; its payment actions, checked with Alipay: " + "; ".join(lines) + ". Nothing was executed again."
    stopped = "confirmed_since" if confirmed else "unfinished_earlier_attempt"
    return {"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "actions": actions, "action_loop": {"steps": 0, "stopped": stopped}}


@dataclass(frozen=True)
class _Outcome:
    content: dict[str, Any]
    proposal: Any = None


def shapes_args(call: Mapping[str, Any]) -> dict[str, Any]:
    """A tool call's arguments as a dict (what the actions entry reports)."""
    import json

    raw = (call.get("function") or {}).get("arguments")
    try:
        value = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


ACTION_LOOP = ActionLoop()


def face(route: tuple[Any, dict[str, Any]]) -> Any:
    """Which face serves an Ant Ling route: the action loop when the provider left a plan, else Ant Ling's."""
    from .ant_ling import ANT_LING

    return ACTION_LOOP if PLAN in route[1] else ANT_LING

