"""The payment tools for agent frameworks, one module per framework, all built on ``PaymentTools``.

- ``openai_agents.function_tools(tools)``: OpenAI Agents SDK function tools (extra ``[agents]``).
- ``langchain.structured_tools(tools)``: LangChain structured tools (extra ``[langchain]``).

The application gives each logical request a ``PaymentRunContext`` (its idempotency key and tenant); the
framework modules import their framework, so import the one you use.
"""

from __future__ import annotations

from .context import PaymentRunContext

__all__ = ["PaymentRunContext"]
