"""Alipay's asynchronous notifications (``notify_url``): verified, checked, deduplicated, audited.

A notification is trusted only when its signature verifies (sorted parameters without ``sign`` and
``sign_type``, ``wire.notify_sign_content``), its ``app_id`` is ours and its ``total_amount`` equals
the trade's (looked up through the verified ``alipay.trade.query`` unless the caller supplies its
own order lookup) and, when configured, its ``seller_id`` is ours. A ``notify_id`` is processed once,
for good: handled ids live in the durable money ledger (``SharedStore``), never dropped by a TTL, so a
replay after a restart or after Alipay's re-send window runs the business hook no second time. A
notification that tells nothing newer than what was already applied to the trade (its state's rank and
refunded total at or below the latest applied) is acknowledged but not applied. The answer to Alipay
is exactly ``success`` once handled, anything else makes Alipay re-send it. The receiver reads at most
``max_body_bytes`` of a request (Alipay's notifications are a few KiB): more is a 413, unread.

``NotifyVerifier.ahandle(params)`` fits any web framework; ``notify_app`` is the small ASGI app
behind ``litellm-alipay notify``.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from ..errors import AlipayError, ConfigurationError
from ..wire.signing import KeyText, PublicKey, load_public_key
from . import wire
from ._sync import run_sync
from .audit import AuditLog
from .classify import ResultClass
from .store import SharedStore

_RANK = {"WAIT_BUYER_PAY": 0, "TRADE_SUCCESS": 1, "TRADE_CLOSED": 2, "TRADE_FINISHED": 2}
#: setting -> environment variable
NOTIFY_ENV = {"seller_id": "ALIPAY_NOTIFY_SELLER_ID", "max_body_bytes": "ALIPAY_NOTIFY_MAX_BODY_BYTES"}


@dataclass(frozen=True)
class NotifySettings:
    """The receiver's settings: ``seller_id`` (the merchant's Alipay account id, 2088…; when set, a
    notification for another seller is rejected) and ``max_body_bytes`` (the request body bound)."""

    seller_id: str | None = None
    max_body_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        if not 1024 <= self.max_body_bytes <= 16 * 1024 * 1024:
            raise ConfigurationError(NOTIFY_ENV["max_body_bytes"], "must be between 1024 and 16777216 bytes")
        if self.seller_id is not None and not (self.seller_id.isdigit() and len(self.seller_id) == 16):
            raise ConfigurationError(NOTIFY_ENV["seller_id"], "must be the 16-digit Alipay account id (2088…)")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotifySettings:
        env = os.environ if env is None else env
        size = env.get(NOTIFY_ENV["max_body_bytes"], "").strip()
        if size and not size.isdigit():
            raise ConfigurationError(NOTIFY_ENV["max_body_bytes"], f"is not a number of bytes: {size!r}")
        return cls(seller_id=env.get(NOTIFY_ENV["seller_id"], "").strip() or None,
                   max_body_bytes=int(size) if size else cls.max_body_bytes)


#: how long one worker holds a notify_id while its hook runs: a worker that dies mid-hook leaves it to
#: Alipay's next re-send after this (Alipay re-sends for about 25 hours)
HANDLING_LEASE = 120


class NotifyRejected(AlipayError):
    """A notification that must not be trusted; ``field`` names what failed (sign, app_id, …)."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"notification rejected: {field}: {problem}")


class NotifyBodyTooLarge(NotifyRejected):
    """A request body over ``max_body_bytes``: answered 413, the rest never read."""

    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__("body", f"larger than {limit} bytes ({NOTIFY_ENV['max_body_bytes']})")


@dataclass(frozen=True)
class Notification:
    notify_id: str
    out_trade_no: str
    trade_no: str | None
    trade_status: str | None
    total_amount: str | None
    refund_fee: str | None
    #: "applied", "duplicate" (this notify_id was handled before) or "stale" (older than what is known)
    disposition: str
    params: dict[str, str]


class NotifyVerifier:
    """Verifies notifications for one app. ``trade_amount(out_trade_no)`` gives the order's total
    (``None`` = unknown order); ``on_notification`` is the caller's business hook — if it raises, the
    answer is not ``success`` and Alipay re-sends. ``seller_id``: the merchant's Alipay account id, checked
    when given (``NotifySettings.seller_id``)."""

    def __init__(self, alipay_public_key: KeyText | PublicKey, app_id: str, *,
                 trade_amount: Callable[[str], Awaitable[str | None]],
                 on_notification: Callable[[Notification], Awaitable[None]] | None = None,
                 audit: AuditLog | None = None, store: SharedStore | None = None,
                 seller_id: str | None = None) -> None:
        self._key = load_public_key(alipay_public_key, "alipay_public_key") \
            if isinstance(alipay_public_key, (str, bytes)) else alipay_public_key
        self.app_id = app_id
        self.seller_id = NotifySettings(seller_id=seller_id).seller_id
        self._trade_amount = trade_amount
        self._on_notification = on_notification
        self.audit = audit
        #: handled notify_ids (for good) and each trade's latest applied state: the durable money ledger,
        #: shared by every worker and instance on it, kept across restarts
        self.store = store or SharedStore()

    @classmethod
    def for_toolkit(cls, toolkit: Any, **kwargs: Any) -> NotifyVerifier:
        """A verifier that checks amounts against ``alipay.trade.query`` through ``toolkit``."""
        settings = toolkit.settings

        async def trade_amount(out_trade_no: str) -> str | None:
            result = await toolkit.methods.query(out_trade_no=out_trade_no)
            if result.result is ResultClass.RETRY_SAME_ID:  # cannot check now: "failure", Alipay re-sends
                raise NotifyRejected("total_amount", "the order's amount cannot be checked now")
            return result.node.get("total_amount") if result.code == "10000" else None

        key = settings.response_key
        key = key(None) if callable(key) else key  # certificate mode: the current Alipay certificate
        kwargs.setdefault("store", toolkit.store)
        return cls(key, settings.app_id, trade_amount=trade_amount, audit=toolkit.audit, **kwargs)

    async def averify(self, params: Mapping[str, str]) -> Notification:
        """The checked notification, or ``NotifyRejected``."""
        params = dict(params)
        if not wire.verify_notify(params, self._key):
            raise NotifyRejected("sign", "the signature does not verify")
        if params.get("app_id") != self.app_id:
            raise NotifyRejected("app_id", "the notification is for another app")
        if self.seller_id is not None and params.get("seller_id") != self.seller_id:
            raise NotifyRejected("seller_id", "the notification is for another seller")
        notify_id, out_trade_no = params.get("notify_id"), params.get("out_trade_no")
        if not notify_id or not out_trade_no:
            raise NotifyRejected("notify_id", "notify_id and out_trade_no are required")
        if await self.store.exists(self._seen_key(notify_id)):
            return self._notification(params, "duplicate")
        expected = await self._trade_amount(out_trade_no)
        if expected is None:
            raise NotifyRejected("out_trade_no", "no such order")
        if wire.cents(params.get("total_amount")) != wire.cents(expected):
            raise NotifyRejected("total_amount", "does not match the order's amount")
        latest = await self.store.hget_int(self._order_key, out_trade_no, -1)
        # at or below the latest applied: nothing newer (the same state and refunded total again is stale)
        return self._notification(params, "stale" if _order(params) <= latest else "applied")

    def verify(self, params: Mapping[str, str]) -> Notification:
        return run_sync(self.averify(params))

    async def ahandle(self, params: Mapping[str, str]) -> str:
        """Verify, run the hook, remember, audit: the exact text to answer Alipay with."""
        try:
            note = await self.averify(params)
        except NotifyRejected as exc:
            self._audit(params, "rejected", reason=str(exc))
            return "failure"
        if note.disposition == "duplicate":
            self._audit(params, "duplicate")
            return "success"
        busy = self._busy_key(note.notify_id)
        if not await self.store.claim(busy, HANDLING_LEASE):
            # another worker is handling this notify_id now: not "success" — if it dies mid-hook, Alipay's
            # re-send (after its lease) must still find the notification unhandled
            self._audit(params, "in_progress")
            return "failure"
        try:
            if await self.store.exists(self._seen_key(note.notify_id)):  # handled between our check and claim
                self._audit(params, "duplicate")
                return "success"
            if note.disposition == "applied":
                if self._on_notification is not None:
                    try:
                        await self._on_notification(note)
                    except Exception as exc:  # the caller's hook failed: Alipay must re-send
                        self._audit(params, "hook_failed", reason=type(exc).__name__)
                        return "failure"
                await self.store.hmax(self._order_key, note.out_trade_no, _order(note.params))
            await self.store.claim(self._seen_key(note.notify_id), None)  # handled: kept for good
        finally:
            await self.store.unclaim(busy)
        self._audit(params, note.disposition)
        return "success"

    def _busy_key(self, notify_id: str) -> str:
        return f"notify-busy:{self.app_id}:{notify_id}"

    def _seen_key(self, notify_id: str) -> str:
        return f"notify-seen:{self.app_id}:{notify_id}"

    @property
    def _order_key(self) -> str:
        return f"notify-order:{self.app_id}"

    def _notification(self, params: dict[str, str], disposition: str) -> Notification:
        return Notification(params["notify_id"], params["out_trade_no"], params.get("trade_no"),
                            params.get("trade_status"), params.get("total_amount"), params.get("refund_fee"),
                            disposition, {k: v for k, v in params.items() if k != "sign"})

    def _audit(self, params: Mapping[str, str], result: str, **fields: Any) -> None:
        if self.audit is not None:
            self.audit.write("notify", app=params.get("app_id"), action="notify", result=result,
                             notify_id=params.get("notify_id"), out_trade_no=params.get("out_trade_no"),
                             trade_no=params.get("trade_no"), trade_status=params.get("trade_status"),
                             amount=params.get("total_amount"), refund_fee=params.get("refund_fee"), **fields)


def _order(params: Mapping[str, str]) -> int:
    """A notification's place in its trade's life: the state's rank, then the refunded total."""
    return _RANK.get(params.get("trade_status") or "", 0) * 10**13 + wire.cents(params.get("refund_fee"))


def parse_form(body: bytes, content_type: str = "") -> dict[str, str]:
    """The notification's form parameters, decoded with the charset they declare."""
    pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="utf-8")
    charset = dict(pairs).get("charset") or "utf-8"
    if charset.lower().replace("-", "") != "utf8":
        pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding=charset)
    return dict(pairs)


def notify_app(verifier: NotifyVerifier, *, max_body_bytes: int = NotifySettings.max_body_bytes,
               ) -> Callable[..., Awaitable[None]]:
    """A minimal ASGI app: ``POST`` (any path) → ``success`` / ``failure`` as ``text/plain``; a body over
    ``max_body_bytes`` → 413, not read further. On the lifespan shutdown it closes the pooled gateway
    connections its lookups opened on the server's loop."""
    return form_post_app(verifier.ahandle, max_body_bytes=max_body_bytes,
                         rejected=lambda why: verifier._audit({}, "rejected", reason=why))


def form_post_app(handle: Callable[[dict[str, str]], Awaitable[str]], *,
                  max_body_bytes: int = NotifySettings.max_body_bytes,
                  rejected: Callable[[str], None] | None = None) -> Callable[..., Awaitable[None]]:
    """The one receiver of Alipay's form POSTs (trade and Delegation Pay notifications): ``handle``'s
    answer as ``text/plain``, the body bounded (413 past ``max_body_bytes``, the rest never read)."""
    limit = NotifySettings(max_body_bytes=max_body_bytes).max_body_bytes

    async def app(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            await answer(send, 405, b"method not allowed")
            return
        try:
            body = await read_body(receive, limit, _content_length(scope))
        except NotifyBodyTooLarge as exc:
            if rejected is not None:
                rejected(str(exc))
            await answer(send, exc.status, b"failure")
            return
        text = await handle(parse_form(body))
        await answer(send, 200, text.encode())

    return app


async def _lifespan(receive: Callable, send: Callable) -> None:
    from ..transport.http import aclose_loop_transports

    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await aclose_loop_transports()
            await send({"type": "lifespan.shutdown.complete"})
            return


def _content_length(scope: Mapping[str, Any]) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def read_body(receive: Callable, limit: int | None = None, declared: int | None = None) -> bytes:
    """The ASGI request body; ``NotifyBodyTooLarge`` as soon as it (or its declared length) passes
    ``limit`` — the rest is never read."""
    if limit is not None and declared is not None and declared > limit:
        raise NotifyBodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise NotifyBodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def answer(send: Callable, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
