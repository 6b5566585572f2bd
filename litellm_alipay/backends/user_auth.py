"""How a call acts for an end user (PROTOCOL A8): a ready token, or a code the token manager exchanges.

A user's authorisation belongs to that user: the token obtained from a credential is cached under a
hash of the app and that credential — never under the ``user`` string a caller names, which anyone
who knows an end-user id could send.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

#: Per-call parameters that act for an end user; they travel as ``auth_token``, never in biz_content.
USER_AUTH_PARAMS = ("auth_token", "auth_code", "user_refresh_token")


@dataclass(frozen=True)
class UserAuth:
    """How a call acts for an end user: a ready ``auth_token``, or an auth code / refresh token the
    token manager exchanges (cached under ``key``). ``tenant`` is the user the request acts for, which
    the exchanged token's ``user_id`` must match."""

    key: str
    auth_token: str | None = field(default=None, repr=False)
    auth_code: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    tenant: str | None = None

    @classmethod
    def from_params(cls, params: dict[str, Any], user_id: str | None, app_id: str = "") -> UserAuth | None:
        """Pops the user-auth parameters from ``params`` (they never go into ``biz_content``)."""
        token = params.pop("auth_token", None)
        code = params.pop("auth_code", None)
        refresh = params.pop("user_refresh_token", None)
        if not (token or code or refresh):
            return None
        kind, credential = ("code", code) if code else ("refresh", refresh or token)
        key = hashlib.sha256(f"{app_id}\0{kind}\0{credential}".encode()).hexdigest()
        return cls(key=key, auth_token=token, auth_code=code, refresh_token=refresh,
                   tenant=str(user_id) if user_id else None)
