"""The gateway adapter: one call = envelope → sign → send → verify → result node.

It composes the pure rooms (protocol, signing) with the transport, and turns every failure into the
LiteLLM exception the Router needs (``errors.gateway_error`` / ``errors.local_error``). It knows nothing
of OpenAI shapes: the provider hands it a ``biz_content`` dict and gets verified Alipay nodes back.

One file per job, in the order a call runs:

- ``send.py``       the call and the stream, top to bottom: admit → build → send → verify; deadlines, failures
- ``envelope.py``   the v2 request, built and signed (``v3.py`` for protocol v3's request and answer)
- ``verify.py``     the v2 answer, verified into a node; ``stream.py`` a B3 stream's events and closing sign
- ``oauth.py``      calls on a user's behalf: token exchange, owner check, one retry
- ``cost.py``       what a call costs
"""

from __future__ import annotations

from ...billing.pricing import PricingConfig, shared_counter
from ...resilience import TokenManager
from ...resilience.guards import Guards
from ...settings import AlipaySettings
from ...wire import protocol
from .cost import Costs
from .envelope import V2_HEADERS, Envelope
from .oauth import UserTokens
from .send import STALL_FLOOR, Calls, logger, timeout_at
from .verify import Verification

__all__ = ["STALL_FLOOR", "Gateway", "logger", "timeout_at"]


class Gateway(Calls, Envelope, Verification, UserTokens, Costs):
    """Calls to one configured gateway. Cheap to hold; built once per deployment settings."""

    def __init__(self, settings: AlipaySettings, provider: str = "alipay") -> None:
        self.settings = settings
        self.provider = provider
        self.guards = Guards(settings)
        self.pricing = PricingConfig.from_object(settings)
        self.counter = shared_counter(settings.redis_url)
        self._tokens: TokenManager | None = None
        self._content_type = {
            **V2_HEADERS, "Content-Type": protocol.form_content_type(settings.charset)
        }
