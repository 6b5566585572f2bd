"""User tokens shared through Redis: an ``auth_code`` is exchanged exactly once, whatever the workers.

Why: an authorisation code is single-use. When a client sends the same code with several requests and
those land on different workers or proxy instances, each one's in-process single flight would exchange
it again — and every exchange after the first fails (``isv.code-invalid``). With ``redis_url`` the
exchange is single-flight across processes: one holder of a short Redis lock exchanges and stores the
answer under the credential's key; the others wait for that answer (bounded by their deadline). Redis
trouble falls back to the in-process exchange (``failopen.py``'s rule: never on the success path).

Stored values are the exchange's raw answer plus the wall-clock time it was obtained, kept until the
access token expires. They are secrets at rest in the operator's Redis, like every other credential
a shared deployment keeps there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .redis_clients import RedisClients

log = logging.getLogger("litellm_alipay")
_PREFIX = "litellm_alipay:tok:"
LOCK_SECONDS = 30.0
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
POLL_SECONDS = 0.05


class RedisTokenStore:
    """Cross-process single flight for OAuth exchanges, keyed by a hash of app and credential."""

    def __init__(self, url: str, clients: RedisClients | None = None) -> None:
        self._clients = clients or RedisClients(url)
        self._warned = False

    async def exchange_once(self, key: str, grant_type: str, previous_access: str | None,
                            exchange: Callable[[], Awaitable[Mapping[str, Any]]],
                            deadline: float | None = None) -> Mapping[str, Any]:
        """The exchange's answer: another process's when it already has one, else ours (stored)."""
        from .failopen import redis_errors

        owner = secrets.token_hex(16)  # the lock is released only by its holder
        try:
            client = self._clients.for_running_loop()
            token_key, lock_key = _PREFIX + key, _PREFIX + key + ":lock"
            while True:
                stored = _usable(await client.get(token_key), grant_type, previous_access)
                if stored is not None:
                    return stored
                if await client.set(lock_key, owner, nx=True, px=int(LOCK_SECONDS * 1000)):
                    break
                if deadline is not None and time.monotonic() + POLL_SECONDS > deadline:
                    raise TimeoutError("another worker's token exchange did not finish within the deadline")
                await asyncio.sleep(POLL_SECONDS)
        except redis_errors() as exc:
            if isinstance(exc, TimeoutError) and not _is_redis_timeout(exc):
                raise
            self._warn(exc)
            return await exchange()
        try:
            stored = _usable(await client.get(token_key), grant_type, previous_access)
            if stored is not None:
                return stored
            # Bounded well inside the lock's life: no second holder can exchange the same code meanwhile.
            async with asyncio.timeout(LOCK_SECONDS * 0.8):
                raw = await exchange()
            await self._put(client, token_key, raw)
            return raw
        finally:
            try:
                await client.eval(_RELEASE, 1, lock_key, owner)
            except redis_errors() as exc:
                self._warn(exc)

    async def _put(self, client: Any, token_key: str, raw: Mapping[str, Any]) -> None:
        from .failopen import redis_errors

        try:
            ttl = max(1, int(float(raw.get("expires_in") or 0)))
            await client.set(token_key, json.dumps({"raw": dict(raw), "at": time.time()}), ex=ttl)
        except (redis_errors(), TypeError, ValueError) as exc:
            self._warn(exc)

    def _warn(self, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            log.warning("token store: Redis unavailable (%s); user tokens exchanged in-process",
                        type(exc).__name__)


def _is_redis_timeout(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("redis")


def _usable(blob: Any, grant_type: str, previous_access: str | None) -> Mapping[str, Any] | None:
    """A stored answer with its lifetimes counted from now; for a refresh, only one newer than ours."""
    if not blob:
        return None
    try:
        doc = json.loads(blob)
        raw, at = dict(doc["raw"]), float(doc["at"])
    except (ValueError, KeyError, TypeError):
        return None
    if grant_type == "refresh_token" and raw.get("access_token") == previous_access:
        return None  # the one we are replacing
    age = max(0.0, time.time() - at)
    for name in ("expires_in", "re_expires_in"):
        if raw.get(name) not in (None, ""):
            try:
                raw[name] = max(0.0, float(raw[name]) - age)
            except (TypeError, ValueError):
                return None
    return raw
