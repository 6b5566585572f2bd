"""litellm-alipay: Alipay's AI gateway as a LiteLLM provider.

    import litellm, litellm_alipay
    litellm_alipay.register()
    litellm.completion(model="alipay/ant-fin-chat", messages=[...])
    await litellm_alipay.aclose()   # optional: release this loop's HTTP and Redis clients now

In a proxy config: ``custom_provider_map: [{provider: alipay, custom_handler: litellm_alipay.alipay_llm}]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .__about__ import __version__
from .errors import (
    AlipayError,
    ConfigurationError,
    DataResidencyError,
    KeyFormatError,
    ProtocolError,
    SignatureError,
    TransportError,
)
from .transport.loop_resources import aclose

if TYPE_CHECKING:
    from .provider import AlipayLLM, alipay_llm, register

__all__ = [
    "AlipayLLM", "alipay_llm", "register", "AlipayError", "ConfigurationError", "DataResidencyError",
    "KeyFormatError", "ProtocolError", "SignatureError", "TransportError", "aclose", "__version__",
]


def __getattr__(name: str):
    """The provider imports litellm (seconds); the signer and emulator must not pay for that."""
    if name in ("AlipayLLM", "alipay_llm", "register"):
        from . import ops, provider, startup

        ops.install()  # the optional features plug into the provider here, at its face

        if name == "alipay_llm":  # what a proxy config names: the proxy is starting
            startup.check_proxy_config()
        return getattr(provider, name)
    raise AttributeError(name)
