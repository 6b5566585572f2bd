"""What decides how the gateway is reached: proxies and TLS verification, as LiteLLM's clients do it.

Both transports take their TLS context from LiteLLM's own ``get_ssl_configuration`` (the deployment's
``ssl_verify`` — a bool or a CA bundle path — then ``SSL_VERIFY``/``litellm.ssl_verify``,
``SSL_CERT_FILE``, certifi; contexts cached by LiteLLM) and their proxies from the ``*_PROXY`` variables.
HTTP clients read those variables when they are made, so ``client_env`` is part of a transport's
identity: change the environment and the next call gets a client that sees the change.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import Any

#: Environment variables the HTTP clients read when they are made (proxies, CA bundle).
CLIENT_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
              "no_proxy", "SSL_CERT_FILE", "SSL_VERIFY")


def ssl_config(ssl_verify: bool | str | None) -> ssl.SSLContext | bool:
    """The TLS verification both transports use: LiteLLM's own resolution and cached contexts
    (``ssl_verify`` first, then ``SSL_VERIFY``/``litellm.ssl_verify``, ``SSL_CERT_FILE``, certifi)."""
    from litellm.llms.custom_httpx.http_handler import get_ssl_configuration

    config = get_ssl_configuration(ssl_verify)
    if isinstance(config, str):  # a CA bundle path on LiteLLM versions that return it unwrapped
        return ssl.create_default_context(cafile=config)
    return config


_ENV_DATA: Mapping[Any, Any] | None = getattr(os.environ, "_data", None)
_ENV_KEYS: tuple[Any, ...] = tuple(os.environ.encodekey(v) for v in CLIENT_ENV) if _ENV_DATA is not None else ()


def client_env() -> tuple:
    """The values of ``CLIENT_ENV`` now (a few µs: read on every call, from the environment's own dict)."""
    if _ENV_DATA is not None:
        return tuple(map(_ENV_DATA.get, _ENV_KEYS))
    return tuple(map(os.environ.get, CLIENT_ENV))
