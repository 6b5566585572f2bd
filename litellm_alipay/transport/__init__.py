"""Getting bytes to a gateway and back: pooled clients per event loop, proxies and TLS.

``http`` holds the clients (aiohttp per loop, httpx sync), ``egress`` the proxy and TLS settings, and
``loop_resources`` releases per-loop clients with their loop. The public names of ``http`` are
re-exported here on first use: ``import litellm_alipay`` (which needs ``loop_resources``) must not pay
for aiohttp and httpx.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AiohttpTransport", "AsyncTransport", "HttpRequest", "HttpResponse", "HttpxTransport", "SyncByteStream",
    "SyncTransport", "async_transport", "sync_transport",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import http

        return getattr(http, name)
    raise AttributeError(name)
