"""The emulator's ASGI application: routes only; the work is in gateway, v3, openai_compat, core.

Routes:

- ``POST /gateway.do``: the v2 gateway.
- ``POST /v3/alipay/cloud/ai/chat`` and ``/v3/alipay/cloud/ai/embed``: the v3 REST gateway.
- ``POST /v1/chat/completions`` and ``/v1/embeddings``: OpenAI-compatible, unsigned.
- ``GET /ant-ling/v1/models``, ``POST /ant-ling/v1/chat/completions``: Ant Ling (``ant_ling.py``), and
  ``GET /_admin/ant-ling/received``: the request bodies it received.
- Admin (unsigned): ``GET /_admin/health``, ``GET /_admin/stats``,
  ``POST /_admin/reset`` (stats, faults, idempotency store, nonces, tokens, quota windows),
  ``GET /_admin/faults``, ``POST /_admin/faults`` (``{"rules": [...]}`` replaces the rules;
  ``{"rules": [...], "append": true}`` adds to them), ``DELETE /_admin/faults``;
  ``GET``/``POST /_admin/trades`` (list / create a trade: ``out_trade_no``, ``total_amount``, optional
  ``trade_status``, ``notify_url``, ``app_id``, ``subject``, ``refund_error``) and
  ``POST /_admin/trades/pay`` (``{"out_trade_no": …}``: the buyer pays a waiting trade);
  ``POST /_admin/a402/pay`` (``{"payment_needed": …}``: the A2M buyer's stand-in, ``a2m.py``).
  Delegation Pay's user side and ``/_admin/clock`` (``delegation_admin.py``).

Admin requests that change state take ``Content-Type: application/json`` only (415 otherwise): a web
page can send a cross-origin ``text/plain`` or form POST without asking, but not a JSON one, so a site
a developer visits cannot inject faults into their emulator. With an admin token configured
(``--admin-token``; required when the emulator listens beyond loopback) every admin endpoint but
``health`` needs ``Authorization: Bearer <token>`` (401 otherwise).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..errors import ConfigurationError
from ..wire import protocol
from . import a2m
from .ant_ling import AntLingRoute
from .config import EmulatorConfig, check_admin_exposure, parse_faults
from .core import Emulator, dumps
from .delegation_admin import delegation_routes
from .gateway import Gateway
from .openai_compat import OpenAICompat
from .responses import TRANSPORT_KEY, RawResponse
from .v3 import V3Gateway


class EmulatorApp(Starlette):
    """Starlette that remembers the connection's transport, so faults can cut or reset it, and
    accepts absolute-form request targets (``POST http://host:port/gateway.do?…``), which the
    official Python SDK sends and the real gateway accepts."""

    emulator: Emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[TRANSPORT_KEY] = getattr(getattr(send, "__self__", None), "transport", None)
            path = scope["path"]
            if path.startswith(("http://", "https://")):
                scope["path"] = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
                scope["raw_path"] = scope["path"].encode()
        await super().__call__(scope, receive, send)


def _json(payload: Any, status: int = 200) -> RawResponse:
    return RawResponse(status, dumps(payload).encode())


Handler = Callable[[Request], Awaitable[RawResponse]]


def admin_guard(token: str | None) -> Callable[[Handler, bool], Handler]:
    """Wrap an admin handler: JSON-only for state changes, and the bearer token when one is set."""
    expected = f"Bearer {token}".encode() if token else None

    def wrap(handler: Handler, needs_token: bool = True) -> Handler:
        async def guarded(request: Request) -> RawResponse:
            if expected is not None and needs_token:
                sent = request.headers.get("authorization", "").encode()
                if not hmac.compare_digest(sent, expected):
                    return _json({"ok": False, "error": "admin endpoints need Authorization: Bearer "
                                  "<the emulator's admin token>"}, 401)
            if request.method != "GET":
                ctype = request.headers.get("content-type", "").partition(";")[0].strip().lower()
                if ctype != "application/json":
                    return _json({"ok": False, "error": "admin requests take Content-Type: "
                                  "application/json only"}, 415)
            return await handler(request)

        return guarded

    return wrap


def create_app(config: EmulatorConfig) -> Starlette:
    """The ASGI app for ``config``; ``app.emulator`` exposes state and faults to in-process callers."""
    check_admin_exposure(config)
    guard = admin_guard(config.admin_token)
    emu = Emulator(config)
    gateway = Gateway(emu)
    v3 = V3Gateway(emu, gateway)
    openai = OpenAICompat(emu)
    ant_ling = AntLingRoute(emu)

    async def health(request: Request) -> RawResponse:
        return _json({"ok": True, "apps": sorted(config.apps)})

    async def stats(request: Request) -> RawResponse:
        snapshot = emu.state.stats.snapshot()
        snapshot["idempotency_keys"] = len(emu.state.idempotency)
        snapshot["active_faults"] = [r.to_dict() for r in emu.faults.rules]
        snapshot["trades"] = emu.trades.stats.snapshot()
        snapshot["a2m_trades"] = emu.a2m.snapshot()
        snapshot["delegations"] = emu.delegations.stats.snapshot()
        return _json(snapshot)

    async def reset(request: Request) -> RawResponse:
        emu.reset()
        ant_ling.reset()
        return _json({"ok": True})

    async def ant_ling_received(request: Request) -> RawResponse:
        return _json({"received": list(ant_ling.received)})

    async def faults(request: Request) -> RawResponse:
        if request.method == "DELETE":
            emu.faults.clear()
        elif request.method == "POST":
            try:
                data = json.loads(await request.body() or b"{}")
                rules = parse_faults(data.get("rules") if isinstance(data, dict) else data, "rules")
            except (ValueError, ConfigurationError) as exc:
                return _json({"ok": False, "error": str(exc)}, 400)
            if isinstance(data, dict) and data.get("append"):
                emu.faults.set(emu.faults.rules + rules)
            else:
                emu.faults.set(rules)
        return _json({"rules": [r.to_dict() for r in emu.faults.rules]})

    async def trades(request: Request) -> RawResponse:
        if request.method == "GET":
            return _json({"trades": [t.public() for t in emu.trades.by_out.values()]})
        try:
            data = json.loads(await request.body() or b"{}")
            if not isinstance(data, dict):
                raise ConfigurationError("trade", "must be a JSON object")
            app_id = str(data.get("app_id") or next(iter(config.apps)))
            if app_id not in config.apps:
                raise ConfigurationError("app_id", f"{app_id!r} is not a registered app")
            if request.url.path.endswith("/pay"):
                trade = emu.trades.pay(app_id, str(data.get("out_trade_no")))
            else:
                trade = emu.trades.create(app_id, data)
        except (ValueError, ConfigurationError) as exc:
            return _json({"ok": False, "error": str(exc)}, 400)
        return _json(trade.public())

    async def a402_pay(request: Request) -> RawResponse:
        """The A2M buyer's stand-in (``emulator/a2m.py``): pay a Payment-Needed, get the Payment-Proof."""
        try:
            data = json.loads(await request.body() or b"{}")
            answer = emu.a2m.pay(data.get("payment_needed") if isinstance(data, dict) else None)
        except ValueError:
            return _json({"ok": False, "code": "INVALID_PARAMETER", "error": "the body must be JSON"}, 400)
        except a2m.PayRefused as exc:
            return _json({"ok": False, "code": exc.code, "error": exc.message}, 400)
        return _json(answer)

    routes = [
        Route("/gateway.do", gateway.handle, methods=["POST"]),
        *(Route(path, v3.handle, methods=["POST"]) for path in protocol.V3_METHODS),
        Route("/v1/chat/completions", openai.chat, methods=["POST"]),
        Route("/v1/embeddings", openai.embeddings, methods=["POST"]),
        Route("/ant-ling/v1/chat/completions", ant_ling.chat, methods=["POST"]),
        Route("/ant-ling/v1/models", ant_ling.models, methods=["GET"]),
        Route("/_admin/ant-ling/received", guard(ant_ling_received), methods=["GET"]),
        Route("/_admin/health", guard(health, False), methods=["GET"]),
        Route("/_admin/stats", guard(stats), methods=["GET"]),
        Route("/_admin/reset", guard(reset), methods=["POST"]),
        Route("/_admin/faults", guard(faults), methods=["GET", "POST", "DELETE"]),
        Route("/_admin/trades", guard(trades), methods=["GET", "POST"]),
        Route("/_admin/trades/pay", guard(trades), methods=["POST"]),
        Route("/_admin/a402/pay", guard(a402_pay), methods=["POST"]),
        *delegation_routes(emu, guard),
    ]
    app = EmulatorApp(routes=routes)
    app.emulator = emu
    return app
