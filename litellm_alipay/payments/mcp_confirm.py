"""A person confirms a refund through MCP elicitation, or the refund is refused.

The toolkit's two-phase confirmation (``payments.confirm``) hands a token to the caller and executes the
proposal when the token comes back. An MCP tool result is read by the model that called the tool, so there
is no safe place in MCP to hand that token to a person. Elicitation is that place: the server asks the
*client* (its user interface, not the model) to confirm, and the proposal executes only on an explicit
accept. A client that declares no elicitation capability gets a refusal: nothing sent.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import anyio

from .toolkit import Proposal


class Answer(StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"  # the person said no, cancelled, or did not tick the box
    UNSUPPORTED = "unsupported"  # the client cannot ask a person (no elicitation capability)
    TIMED_OUT = "timed_out"


#: the form the client shows: one boolean the person must set
_FIELD = "confirm"


def can_ask(session: Any) -> bool:
    """Whether the connected client declared the elicitation capability."""
    caps = getattr(session, "client_capabilities", None)
    return caps is not None and caps.elicitation is not None


def question(proposal: Proposal) -> str:
    trade = proposal.args.get("out_trade_no") or proposal.args.get("trade_no")
    reason = proposal.args.get("refund_reason")
    return (f"Refund {proposal.amount} CNY of order {trade}"
            + (f" (reason: {reason})" if reason else "")
            + f"? Request number {proposal.out_request_no}. Money moves only if you confirm.")


async def ask_person(session: Any, request_id: Any, proposal: Proposal, timeout: float) -> Answer:
    """Ask the client's user to confirm ``proposal`` (form elicitation, related to the tool call)."""
    from mcp.shared.exceptions import MCPError

    if not can_ask(session):
        return Answer.UNSUPPORTED
    schema = {"type": "object", "required": [_FIELD], "properties": {
        _FIELD: {"type": "boolean", "title": "Confirm this refund", "default": False}}}
    try:
        with anyio.fail_after(timeout):
            result = await session.elicit_form(question(proposal), schema, related_request_id=request_id)
    except TimeoutError:
        return Answer.TIMED_OUT
    except MCPError:  # no back-channel on this connection, or the client (a gateway) answered with an error
        return Answer.UNSUPPORTED
    if result.action == "accept" and (result.content or {}).get(_FIELD) is True:
        return Answer.ACCEPTED
    return Answer.DECLINED
