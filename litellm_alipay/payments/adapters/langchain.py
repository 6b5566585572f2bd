"""The payment tools as LangChain structured tools (extra ``[langchain]``).

    from litellm_alipay.payments.adapters import PaymentRunContext
    from litellm_alipay.payments.adapters.langchain import structured_tools

    lc_tools = structured_tools(PaymentTools(kit))
    model = ChatOpenAI(...).bind_tools(lc_tools)
    context = PaymentRunContext(idempotency_key=ticket_id, tenant=user_id)
    config = {"configurable": {"payment_context": context}}
    ai = await model.ainvoke(messages, config=config)
    for call in ai.tool_calls:
        tool_message = await tools_by_name[call["name"]].ainvoke(call, config=config)

Each tool's schema is ``PaymentTools.definitions()``'s and its invocation is ``PaymentTools.aexecute``:
policy, caps, confirmation, at-most-once and audit are the toolkit's. The idempotency key and the tenant
come from the ``RunnableConfig`` the application passes (``configurable["payment_context"]``, a
``PaymentRunContext``; LangGraph passes the same config down to its tool nodes), never from the model.
A money-moving tool called without a key raises ``MissingIdempotencyKeyError`` before anything is sent.
The tool answers ``content_and_artifact``: the model reads the JSON content; the ``ToolMessage``'s
``artifact`` is the ``ToolOutcome`` (with a confirmation proposal's token), for the application only.
"""

from __future__ import annotations

import uuid
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import StructuredTool

from ...errors import ConfigurationError
from .._sync import run_sync
from ..tools import PaymentTools, ToolOutcome
from .context import PaymentRunContext, run_tool

#: where ``structured_tools`` looks in ``config["configurable"]`` by default
CONTEXT_KEY = "payment_context"


def structured_tools(tools: PaymentTools, *, context_key: str = CONTEXT_KEY) -> list[StructuredTool]:
    """One ``StructuredTool`` per enabled payment action, reading the ``PaymentRunContext`` from
    ``config["configurable"][context_key]`` of each invocation."""
    return [_tool(tools, definition["function"], context_key) for definition in tools.definitions()]


def _tool(tools: PaymentTools, function: dict[str, Any], context_key: str) -> StructuredTool:
    name = function["name"]

    async def arun(config: RunnableConfig, **arguments: Any) -> tuple[str, ToolOutcome]:
        context = _context(config, context_key)
        outcome = await run_tool(tools, name, arguments, context, call_id=f"lc_{uuid.uuid4().hex}",
                                 where=f'the RunnableConfig\'s configurable["{context_key}"] (a PaymentRunContext)')
        return outcome.message["content"], outcome

    def run(config: RunnableConfig, **arguments: Any) -> tuple[str, ToolOutcome]:
        return run_sync(arun(config, **arguments))  # the one async implementation, driven

    return StructuredTool.from_function(
        func=run, coroutine=arun, name=name, description=function["description"],
        args_schema=function["parameters"], response_format="content_and_artifact",
    )


def _context(config: RunnableConfig | None, key: str) -> PaymentRunContext | None:
    value = ((config or {}).get("configurable") or {}).get(key)
    if value is None or isinstance(value, PaymentRunContext):
        return value
    raise ConfigurationError(f'configurable["{key}"]',
                             f"must be a PaymentRunContext, not {type(value).__name__}: "
                             "PaymentRunContext(idempotency_key=..., tenant=...)")
