"""What every framework adapter shares: the application's per-request context and the one way a framework's
tool call reaches ``PaymentTools``.

The model supplies a tool's business arguments only. The idempotency key and the tenant are the
application's: it puts them in a ``PaymentRunContext`` for each logical request (a support ticket's refund,
an order operation) and hands that to the framework's run (the Agents SDK's run context, LangChain's
``RunnableConfig``). A money-moving tool called without a key raises ``MissingIdempotencyKeyError`` before
anything is sent, instead of telling the model: it is the integrator's mistake, and a retried run without a
key could not find the first outcome. Every call then goes through ``PaymentTools.aexecute``, so policy,
caps, confirmation, at-most-once and the audit trail are exactly those of the other doors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...errors import ConfigurationError, MissingIdempotencyKeyError
from ..idempotency import check_idempotency_key
from ..policy import READ_ONLY
from ..toolkit import Proposal
from ..tools import PaymentTools, ToolOutcome


@dataclass
class PaymentRunContext:
    """The application's values for one logical request, given to the framework's run.

    ``idempotency_key`` is the same for every retry of that request (8-255 printable ASCII characters):
    a run retried with it refunds nothing twice. ``tenant`` is who the request acts for (written to the audit trail).
    ``outcomes`` collects each executed tool call, in order, for the application: a refund waiting for
    confirmation is in ``proposals``, with the token that only the application holds
    (``toolkit.confirm(proposal.token)`` executes it once).
    """

    idempotency_key: str | None = None
    tenant: str | None = None
    outcomes: list[ToolOutcome] = field(default_factory=list)

    @property
    def proposals(self) -> list[Proposal]:
        """The refunds of this run waiting for the application's confirmation."""
        return [o.proposal for o in self.outcomes if o.proposal is not None]


def moves_money(tool: str) -> bool:
    """Whether ``tool`` needs the application's idempotency key (every action but the read-only ones)."""
    return tool not in READ_ONLY


async def run_tool(tools: PaymentTools, name: str, arguments: str | Mapping[str, Any],
                   context: PaymentRunContext | None, *, call_id: str, where: str,
                   error: type[MissingIdempotencyKeyError] = MissingIdempotencyKeyError) -> ToolOutcome:
    """Runs one framework tool call through ``tools``. A money-moving call without a valid key raises
    ``error`` (a ``MissingIdempotencyKeyError``) before anything is sent; ``where`` names, in it, what the
    application should have given the key to."""
    key = context.idempotency_key if context is not None else None
    if moves_money(name):
        if key is None:
            raise error(name, where)
        try:
            check_idempotency_key(key)
        except ConfigurationError:
            raise error(name, where, malformed=True) from None
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    # one run is one logical request that may act on several trades: each (action, trade) claimed under the key
    outcome = await tools.aexecute(call, idempotency_key=key, tenant=context.tenant if context else None,
                                   several=True)
    if context is not None:
        context.outcomes.append(outcome)
    return outcome
