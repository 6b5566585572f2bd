"""Operations features, each optional and plugged in through LiteLLM's own hooks.

``health`` (``litellm-alipay check``), ``shadow`` (a success callback), ``guardrails`` (a
``CustomGuardrail``) and ``residency`` (a pre-send check ``install`` puts into the provider). Nothing on
the hot path imports this package: it plugs into it.
"""

from __future__ import annotations


def install() -> None:
    """Plug the operations hooks the provider runs into it; idempotent.

    Called by the package's face (``litellm_alipay.register`` / ``alipay_llm`` / ``AlipayLLM``, which a
    proxy config names) when the provider is first asked for.
    """
    from .. import provider
    from . import residency

    provider.PRE_SEND_CHECKS["residency_regions"] = residency.pre_send
