"""Where a request may go: the proxy for a URL and the TLS verification, read the way LiteLLM reads them.

One place for both, so every call (plain, stream, Ant Ling, payments) leaves the same way:

- TLS: LiteLLM's own ``get_ssl_configuration`` (the deployment's ``ssl_verify`` — a bool, or a PEM file
  that is either a CA bundle or the gateway's own pinned, self-signed certificate — then
  ``SSL_VERIFY``/``litellm.ssl_verify``, ``SSL_CERT_FILE``, certifi; contexts cached by LiteLLM). A file
  given as ``ssl_verify`` is the *only* trust: the context loads it instead of the default store, so a
  certificate from any other CA is refused even when that CA is publicly trusted. Hostnames are checked.
- Proxies: ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` (either case) and ``NO_PROXY``, as LiteLLM's
  aiohttp transport reads them (``urllib.request.getproxies``, the URL's scheme first and then ``all``,
  ``proxy_bypass`` for ``NO_PROXY``; ``DISABLE_AIOHTTP_TRUST_ENV`` / ``litellm.disable_aiohttp_trust_env``
  turns them off). Never a netrc ``Authorization`` on a gateway call.

Clients and proxy answers are made once per configuration, so ``client_env`` (the variables' values now)
is part of a transport's identity: change the environment and the next call gets a client that sees it.
"""

from __future__ import annotations

import os
import ssl
import urllib.request
from urllib.parse import urlsplit

#: Environment variables that decide where bytes go (proxies, CA bundle, verification).
CLIENT_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
              "no_proxy", "SSL_CERT_FILE", "SSL_VERIFY", "DISABLE_AIOHTTP_TRUST_ENV")


def ssl_config(ssl_verify: bool | str | None) -> ssl.SSLContext | bool:
    """The TLS verification every call uses: LiteLLM's own resolution and cached contexts
    (``ssl_verify`` first, then ``SSL_VERIFY``/``litellm.ssl_verify``, ``SSL_CERT_FILE``, certifi)."""
    from litellm.llms.custom_httpx.http_handler import get_ssl_configuration

    config = get_ssl_configuration(ssl_verify)
    if isinstance(config, str):  # a CA bundle path on LiteLLM versions that return it unwrapped
        return ssl.create_default_context(cafile=config)
    return config


def proxy_for(url: str) -> str | None:
    """The proxy URL a request to ``url`` goes through, or ``None`` (no proxy set, or ``NO_PROXY`` says so).

    LiteLLM's rule (``LiteLLMAiohttpTransport._proxy_from_env``): the scheme's own variable, else
    ``ALL_PROXY``; a proxy written without a scheme is ``http://``. Callers cache the answer per origin
    and key the cache on ``client_env``.
    """
    import litellm

    if getattr(litellm, "disable_aiohttp_trust_env", False) or _true(os.environ.get("DISABLE_AIOHTTP_TRUST_ENV")):
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host and urllib.request.proxy_bypass(host):
        return None
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if proxy and "://" not in proxy:
        proxy = f"http://{proxy}"
    return proxy or None


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def client_env() -> tuple[str | None, ...]:
    """The values of ``CLIENT_ENV`` now (read on every call: a changed variable makes new clients)."""
    return tuple(map(os.environ.get, CLIENT_ENV))
