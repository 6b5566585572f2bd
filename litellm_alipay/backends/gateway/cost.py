"""What a call costs (B6): priced at its place in the app's month, the count shared through Redis when
configured; bookkeeping never fails a call.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ...billing.pricing import Cost, PricingConfig, price_chat, price_embedding
from ...settings import AlipaySettings
from ...transport.sync_driver import SYNC

logger = logging.getLogger("litellm_alipay")


class Costs:
    """Chat and embedding cost (mixed into ``Gateway``)."""

    settings: AlipaySettings
    pricing: PricingConfig
    counter: Any

    def chat_cost(self, usage: Mapping[str, Any], actions: list | None) -> Cost:
        return SYNC.run(self.achat_cost(usage, actions))

    async def achat_cost(self, usage: Mapping[str, Any], actions: list | None) -> Cost:
        """B6 cost of one chat call, at its place in the app's month (Redis-shared when configured).

        Bookkeeping never fails a call: if the count cannot be had, the call is priced at the month's
        first tier and a WARNING says so."""
        try:
            return price_chat(usage, actions, self.pricing, await self.counter.abook(self.settings.app_id))
        except Exception as exc:  # noqa: BLE001
            return _unpriced(exc, lambda: price_chat(usage, actions, self.pricing, 1))

    def embedding_cost(self, usages: list[Mapping[str, Any]]) -> Cost:
        return SYNC.run(self.aembedding_cost(usages))

    async def aembedding_cost(self, usages: list[Mapping[str, Any]]) -> Cost:
        try:
            position = await self.counter.abook(self.settings.app_id, len(usages))
            return price_embedding(usages, self.pricing, position)
        except Exception as exc:  # noqa: BLE001
            return _unpriced(exc, lambda: price_embedding(usages, self.pricing, 1))


def _unpriced(exc: BaseException, fallback: Any) -> Cost:
    logger.warning("alipay cost: the month's request count is unavailable (%s); priced at the first tier",
                   type(exc).__name__)
    return fallback()


