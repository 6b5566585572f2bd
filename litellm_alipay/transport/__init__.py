"""Getting bytes to a gateway and back: pooled clients per event loop, proxies and TLS.

``http`` holds the one HTTP stack (an aiohttp session per gateway configuration and loop), ``egress`` where
requests may go (proxies, TLS), ``limits`` and ``decode`` how much may come back, and ``loop_resources``
releases per-loop clients with their loop. The public names of ``http`` are
re-exported here on first use: ``import litellm_alipay`` (which needs ``loop_resources``) must not pay
for aiohttp.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AiohttpTransport", "AsyncTransport", "HttpRequest", "HttpResponse", "async_transport", "transport_for",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import http

        return getattr(http, name)
    raise AttributeError(name)
