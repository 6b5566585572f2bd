"""What a proxy client is told when LiteLLM's own authentication refuses it (before any deployment runs).

Without a key database (the shipped configs have none), LiteLLM's proxy answers some refusals wrongly, on
1.108.7 and 1.110.x alike:

* a key that is not the master key: 400 "No connected db." — the client is told nothing about its key;
* a missing key (1.108.7) and a client-sent ``api_base`` (both versions): a plain exception whose handler
  imports ``prisma`` (a database client the ``[proxy]`` extra does not install, and should not need), so
  the client gets a plain-text 500 "Internal Server Error".

LiteLLM lets a callback replace the answer to a failed request (``async_post_call_failure_hook`` returning
an ``HTTPException``, documented for error transformation). ``trust_hooks.trust_boundary`` — in every
shipped config — does so with ``refusal`` below: 401 for a missing, malformed or unknown key, 400 naming a
refused body field. Only refusals raised before LiteLLM accepted the request are touched (its
``proxy_server_request`` is not set yet); a model's failure keeps LiteLLM's own answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: ``ProxyErrorTypes.no_db_connection``: LiteLLM's "No connected db." refusal of a non-master key.
NO_DB = "no_db_connection"
UNKNOWN_KEY = ("Authentication Error: this key is not accepted. The proxy keeps no key database, so only its "
               "master key (Authorization: Bearer <LITELLM_MASTER_KEY>) is accepted")
_BANNED_FIELD = re.compile(r"Rejected Request: (\w+) is not allowed in request body")


def refusal(exc: BaseException, request_data: Mapping[str, Any]) -> tuple[int, str] | None:
    """``(status, message)`` for an authentication refusal LiteLLM would answer wrongly, else None."""
    if "proxy_server_request" in request_data:  # accepted: a model's failure, not an authentication one
        return None
    if getattr(exc, "type", None) == NO_DB:
        return 401, UNKNOWN_KEY
    text = str(getattr(exc, "message", None) or exc)
    if isinstance(exc, ValueError) and text.startswith("Rejected Request: "):
        field = _BANNED_FIELD.match(text)
        if field:
            return 400, (f"{field.group(1)} is a deployment setting and cannot be sent by a client (found in the "
                         "request's body); the proxy operator sets it in the deployment's litellm_params")
        return 400, text
    if type(exc) is Exception:  # LiteLLM's plain refusals: no key, a malformed one, a master-key-only route
        return 401, text if text.startswith("Authentication Error") else f"Authentication Error, {text}"
    return None
