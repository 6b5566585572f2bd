"""The admin endpoints of Delegation Pay: the user's side of the Alipay app and the emulator's clock.

- ``POST /_admin/delegations/approve`` ``{"order_str": "<the signed apply string>", "decision":
  "approve"|"refuse"}``: the user answers in the Alipay app; ``{"agreement_no", "delegation_id", …}``.
- ``POST /_admin/delegations/terminate`` ``{"agreement_no"}``: the user ends the agreement in the app.
- ``POST /_admin/delegations/gateway`` ``{"url", "app_id"?}``: the app's application gateway (where
  ``dut_*`` notifications go).
- ``GET /_admin/delegations``: every task as query reports it.
- ``POST /_admin/clock`` ``{"advance_seconds": N}`` (or ``advance_days``): time travel, forward only;
  ``GET /_admin/clock``: the emulator's Beijing time.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ..errors import ConfigurationError
from .core import Emulator, dumps
from .responses import RawResponse

Handler = Callable[[Request], Awaitable[RawResponse]]


def _json(payload: Any, status: int = 200) -> RawResponse:
    return RawResponse(status, dumps(payload).encode())


def delegation_routes(emu: Emulator, guard: Callable[[Handler], Handler]) -> list[Route]:
    book = emu.delegations
    apps = emu.config.apps

    async def body(request: Request) -> dict[str, Any]:
        try:
            data = json.loads(await request.body() or b"{}")
        except ValueError:
            raise ConfigurationError("body", "must be JSON") from None
        if not isinstance(data, dict):
            raise ConfigurationError("body", "must be a JSON object")
        return data

    def handler(work: Callable[[dict[str, Any]], Any]) -> Handler:
        async def run(request: Request) -> RawResponse:
            try:
                return _json(work(await body(request) if request.method == "POST" else {}))
            except ConfigurationError as exc:
                return _json({"ok": False, "error": str(exc)}, 400)

        return guard(run)

    def approve(data: dict[str, Any]) -> Any:
        return book.approve(str(data.get("order_str") or ""), str(data.get("decision") or ""))

    def terminate(data: dict[str, Any]) -> Any:
        return book.terminate(str(data.get("agreement_no") or ""))

    def gateway(data: dict[str, Any]) -> Any:
        app_id = str(data.get("app_id") or next(iter(apps)))
        if app_id not in apps:
            raise ConfigurationError("app_id", f"{app_id!r} is not a registered app")
        book.set_gateway(app_id, str(data.get("url") or ""))
        return {"ok": True, "app_id": app_id}

    def listing(data: dict[str, Any]) -> Any:
        return {"delegations": [t.node() for t in book.tasks.values()], "stats": book.stats.snapshot()}

    def clock(data: dict[str, Any]) -> Any:
        if not data:
            return book.advance(0)
        try:
            seconds = float(data.get("advance_seconds") or 0) + 86400 * float(data.get("advance_days") or 0)
        except (TypeError, ValueError):
            raise ConfigurationError("advance_seconds", "must be a number of seconds (or advance_days)") from None
        return book.advance(seconds)

    return [
        Route("/_admin/delegations/approve", handler(approve), methods=["POST"]),
        Route("/_admin/delegations/terminate", handler(terminate), methods=["POST"]),
        Route("/_admin/delegations/gateway", handler(gateway), methods=["POST"]),
        Route("/_admin/delegations", handler(listing), methods=["GET"]),
        Route("/_admin/clock", handler(clock), methods=["GET", "POST"]),
    ]
