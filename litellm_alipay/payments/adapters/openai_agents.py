"""The payment tools as OpenAI Agents SDK function tools (extra ``[agents]``).

    from agents import Agent, Runner
    from litellm_alipay.payments.adapters import PaymentRunContext
    from litellm_alipay.payments.adapters.openai_agents import function_tools

    agent = Agent(name="refunds", instructions="…", tools=function_tools(PaymentTools(kit)))
    context = PaymentRunContext(idempotency_key=ticket_id, tenant=user_id)
    result = await Runner.run(agent, "refund order 42 by 8.00", context=context)
    context.proposals   # refunds waiting for the user's confirmation (kit.confirm(p.token))

Each tool is a ``FunctionTool`` whose schema is ``PaymentTools.definitions()``'s and whose invocation is
``PaymentTools.aexecute``: policy, caps, confirmation, at-most-once and audit are the toolkit's. The
idempotency key and the tenant come from the run context the application passes to ``Runner.run``
(a ``PaymentRunContext``, or any context with ``context_of`` to find one in it), never from the model.
A money-moving tool called without a key fails the run with ``MissingIdempotencyKeyError`` (raised as is:
it is also an Agents SDK ``UserError``, which the SDK does not wrap) before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from agents import FunctionTool
from agents.exceptions import UserError
from agents.tool_context import ToolContext

from ...errors import MissingIdempotencyKeyError
from ..tools import PaymentTools
from .context import PaymentRunContext, run_tool

ContextOf = Callable[[Any], "PaymentRunContext | None"]


class AgentsMissingIdempotencyKeyError(MissingIdempotencyKeyError, UserError):
    """``MissingIdempotencyKeyError`` as the Agents SDK lets it through: the SDK re-raises its own
    exceptions from a tool and wraps every other one in a ``UserError`` whose text hides the type."""

    def __init__(self, tool: str, where: str, *, malformed: bool = False) -> None:
        MissingIdempotencyKeyError.__init__(self, tool, where, malformed=malformed)
        self.message = str(self)  # what UserError's own __init__ would have set
        self.run_data = None


def _own_context(context: Any) -> PaymentRunContext | None:
    return context if isinstance(context, PaymentRunContext) else None


def function_tools(tools: PaymentTools, *, context_of: ContextOf = _own_context) -> list[FunctionTool]:
    """One ``FunctionTool`` per enabled payment action.

    ``context_of`` finds the ``PaymentRunContext`` in the run's context object (default: the context is
    one); return None when there is none — read-only tools still run, money-moving ones raise.
    """
    out = []
    for definition in tools.definitions():
        function = definition["function"]
        out.append(FunctionTool(
            name=function["name"],
            description=function["description"],
            params_json_schema=function["parameters"],
            on_invoke_tool=partial(_invoke, tools, function["name"], context_of),
            strict_json_schema=False,  # optional fields (trade_no or out_trade_no) stay optional
        ))
    return out


async def _invoke(tools: PaymentTools, name: str, context_of: ContextOf, ctx: ToolContext[Any], arguments: str) -> str:
    outcome = await run_tool(tools, name, arguments, context_of(ctx.context), call_id=ctx.tool_call_id,
                             where="Runner.run(context=PaymentRunContext(...))",
                             error=AgentsMissingIdempotencyKeyError)
    return outcome.message["content"]  # the JSON the model reads; a proposal's token stays in the context
