"""What a request routed to the regional model saved against sending it to Alipay. Pure.

Alipay's price of the same exchange is the deployment's contract price (``billing.pricing``: by default
0.03 CNY per started 1,000 characters — a minimum per request, so a one-word turn costs as much as a
paragraph) at the month's list price (tier 1: the saving is not inflated by a discount the app may not have
reached). The regional model's cost is what LiteLLM priced the call at (``response_cost``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..billing.pricing import PricingConfig, price_chat
from .decide import text_of


def alipay_price_usd(messages: Sequence[Mapping[str, Any]] | Any, answer: str | None,
                     config: PricingConfig) -> float:
    """Alipay's price (USD) of a chat with these messages and this answer."""
    chars = sum(len(text_of(m.get("content"))) for m in messages or () if isinstance(m, Mapping))
    usage = {"input_chars": chars, "output_chars": len(answer or "")}
    return price_chat(usage, None, config).usd


def saved_usd(messages: Sequence[Mapping[str, Any]] | Any, answer: str | None, regional_cost_usd: float | None,
              config: PricingConfig) -> float:
    """Alipay's price minus what the regional model cost (an unknown cost counts as 0), never negative."""
    return max(0.0, alipay_price_usd(messages, answer, config) - float(regional_cost_usd or 0.0))
