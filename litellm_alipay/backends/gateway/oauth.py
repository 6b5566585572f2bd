"""Calls on a user's behalf (A8): the app's OAuth token manager, the owner check, and the one retry after
``aop.auth-token-time-out`` — all under the call's one deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from ...errors import TenantMismatchError, local_error
from ...resilience import TokenManager
from ...resilience.tokens import EXCHANGE_DEADLINE
from ...settings import AlipaySettings
from ...transport.sync_driver import SYNC
from ...wire import protocol
from ..user_auth import UserAuth
from .send import timeout_at


class UserTokens:
    """User-token orchestration (mixed into ``Gateway``, whose ``acall`` does the exchanges)."""

    settings: AlipaySettings
    provider: str
    _tokens: TokenManager | None

    @property
    def tokens(self) -> TokenManager:
        """OAuth user tokens (A8) of this app, shared by every deployment of it in the process (and,
        with ``redis_url``, single-flight across processes): exchanged once, refreshed before expiry."""
        if self._tokens is None:
            self._tokens = _token_manager(self)
        return self._tokens

    async def _exchange(self, grant_type: str, value: str) -> dict[str, Any]:
        field = "code" if grant_type == "authorization_code" else "refresh_token"
        return await self.acall(protocol.METHOD_OAUTH, None, "oauth", deadline=EXCHANGE_DEADLINE.get(),
                                extra={"grant_type": grant_type, field: value})

    def check_owner(self, auth: UserAuth, token: str, model: str) -> str:
        """The token, once its owner (the exchange's ``user_id``) is the user the request acts for."""
        cached = self.tokens.cached(auth.key)
        owner = cached.user_id if cached is not None else None
        if auth.tenant and owner != auth.tenant:  # fail closed: an answer naming no user proves nothing
            raise local_error(TenantMismatchError(
                f"the user credential belongs to another user than the request's user {auth.tenant!r}"),
                model=model, provider=self.provider)
        return token

    def call_as_user(self, method: str, biz: Mapping[str, Any], model: str, auth: UserAuth, *,
                     timeout: float | None = None, deadline: float | None = None) -> dict[str, Any]:
        """``acall_as_user`` driven from sync (``transport/sync_driver.py``)."""
        return SYNC.run(self.acall_as_user(method, biz, model, auth, timeout=timeout, deadline=deadline))

    async def acall_as_user(self, method: str, biz: Mapping[str, Any], model: str, auth: UserAuth, *,
                            timeout: float | None = None, deadline: float | None = None) -> dict[str, Any]:
        """A call on a user's behalf: a given ``auth_token`` as is, else one from the token manager,
        refreshed and retried once after ``20001 aop.auth-token-time-out``; one deadline for it all."""
        deadline = self._deadline(deadline, timeout)
        if auth.auth_token:
            return await self.acall(method, biz, model, deadline=deadline, auth_token=auth.auth_token)

        async def call(token: str) -> dict[str, Any]:
            return await self.acall(method, biz, model, deadline=deadline,
                                    auth_token=self.check_owner(auth, token, model))

        EXCHANGE_DEADLINE.set(deadline)
        try:
            async with timeout_at(deadline):
                return await self.tokens.with_token_retry(
                    auth.key, call, auth_code=auth.auth_code, refresh_token=auth.refresh_token)
        except TimeoutError:
            raise self._late(model, deadline) from None

    async def astream_token(self, auth: UserAuth | None, model: str = "", deadline: float | None = None
                            ) -> str | None:
        """The token a stream is opened with (a stream is not retried once it has started)."""
        if auth is None or auth.auth_token:
            return auth.auth_token if auth else None
        deadline = self._deadline(deadline, None)
        EXCHANGE_DEADLINE.set(deadline)
        try:
            async with timeout_at(deadline):
                token = await self.tokens.get_token(auth.key, auth_code=auth.auth_code,
                                                    refresh_token=auth.refresh_token)
        except TimeoutError:
            raise self._late(model, deadline) from None
        return self.check_owner(auth, token, model)

    def stream_token(self, auth: UserAuth | None, model: str = "", deadline: float | None = None) -> str | None:
        return SYNC.run(self.astream_token(auth, model, deadline))


_token_managers: dict[tuple, TokenManager] = {}
_token_lock = threading.Lock()


def _token_manager(gateway: Any) -> TokenManager:
    """One token manager per (gateway, app, Redis): a credential is exchanged once however many
    deployments (models, transports) of the app share the process."""
    s = gateway.settings
    key = (s.gateway_url, s.app_id, s.redis_url, s.app_auth_token)  # an ISV's merchants never share tokens
    with _token_lock:
        found = _token_managers.get(key)
        if found is None:
            from ...resilience.token_store import RedisTokenStore

            store = RedisTokenStore(s.redis_url) if s.redis_url else None
            found = _token_managers[key] = TokenManager(gateway._exchange, store=store)
        return found


