"""A moderation guardrail for the proxy, in front of Alipay: blocks a prompt before any model sees it.

Offline and deterministic on purpose (no moderation API to call, nothing to download): it refuses
prompts carrying a payment card number (13–19 digits passing the Luhn check, spaces or dashes allowed)
or a term from a configured deny-list. Why these: card numbers are the PII a payment assistant most
often receives by mistake and must never forward; the deny-list is the operator's own policy.

Proxy config (the class is imported from the installed package, never from a file beside the config)::

    guardrails:
      - guardrail_name: alipay-moderation
        litellm_params:
          guardrail: litellm_alipay.ops.guardrails.AlipayModerationGuardrail
          mode: pre_call
          default_on: true
          models: [fin-chat, fin-chat-lite]   # model groups it guards; absent = every model
          deny_terms: ["password", "CVV"]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from litellm.integrations.custom_guardrail import CustomGuardrail
from litellm.types.guardrails import GuardrailEventHooks

_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies (and most random digit runs do not)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def card_numbers(text: str) -> list[str]:
    """Payment card numbers in ``text`` (digits only), ignoring digit runs that fail the Luhn check."""
    found = []
    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            found.append(digits)
    return found


def texts_of(data: Mapping[str, Any]) -> list[str]:
    """Every text the request would send: message contents (strings and text parts) and embedding input."""
    out: list[str] = []
    for message in data.get("messages") or ():
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, Sequence):
            out.extend(str(p.get("text")) for p in content if isinstance(p, Mapping) and p.get("text"))
    given = data.get("input")
    if isinstance(given, str):
        out.append(given)
    elif isinstance(given, Sequence):
        out.extend(item for item in given if isinstance(item, str))
    return out


def violation(texts: Iterable[str], deny_terms: Iterable[str] = (), block_card_numbers: bool = True) -> str | None:
    """Why the texts must not be sent, or None. The reason never repeats the sensitive value."""
    terms = [term.lower() for term in deny_terms if term]
    for text in texts:
        if block_card_numbers and card_numbers(text):
            return "the prompt contains a payment card number"
        lowered = text.lower()
        for term in terms:
            if term in lowered:
                return f"the prompt contains the denied term {term!r}"
    return None


class AlipayModerationGuardrail(CustomGuardrail):
    """``pre_call`` guardrail: refuses with HTTP 400 before the Router picks a deployment."""

    def __init__(self, models: Sequence[str] | None = None, deny_terms: Sequence[str] | None = None,
                 block_card_numbers: bool = True, **kwargs: Any) -> None:
        self.models = frozenset(models or ())
        self.deny_terms = tuple(deny_terms or ())
        self.block_card_numbers = bool(block_card_numbers)
        kwargs.setdefault("supported_event_hooks", [GuardrailEventHooks.pre_call])
        super().__init__(**kwargs)

    def guards(self, model: Any) -> bool:
        """Whether this request's model group is one the guardrail stands in front of."""
        return not self.models or model in self.models

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict,
                                  call_type: Any) -> dict:
        if not self.should_run_guardrail(data=data, event_type=GuardrailEventHooks.pre_call):
            return data
        if not self.guards(data.get("model")):
            return data
        reason = violation(texts_of(data), self.deny_terms, self.block_card_numbers)
        if reason is not None:
            from fastapi import HTTPException

            raise HTTPException(status_code=400, detail={
                "error": f"Blocked by guardrail {self.guardrail_name}: {reason}"})
        return data
