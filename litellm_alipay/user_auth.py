"""How a call acts for an end user (PROTOCOL A8): a ready token, or a code the token manager exchanges."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

#: Per-call parameters that act for an end user; they travel as ``auth_token``, never in biz_content.
USER_AUTH_PARAMS = ("auth_token", "auth_code", "user_refresh_token")


@dataclass(frozen=True)
class UserAuth:
    """How a call acts for an end user: a ready ``auth_token``, or an auth code / refresh token the
    token manager exchanges (cached under ``key``)."""

    key: str
    auth_token: str | None = None
    auth_code: str | None = None
    refresh_token: str | None = None

    @classmethod
    def from_params(cls, params: dict[str, Any], user_id: str | None) -> UserAuth | None:
        """Pops the user-auth parameters from ``params`` (they never go into ``biz_content``)."""
        token = params.pop("auth_token", None)
        code = params.pop("auth_code", None)
        refresh = params.pop("user_refresh_token", None)
        if not (token or code or refresh):
            return None
        seed = user_id or hashlib.sha256(str(code or refresh).encode()).hexdigest()
        return cls(key=seed, auth_token=token, auth_code=code, refresh_token=refresh)
