"""A2M for any ASGI app (FastAPI, Starlette): sell chosen routes to agents per call.

    app = A2MMiddleware(app, merchant, prices={"/tools/weather": "0.01"})

A priced request without a valid ``Payment-Proof`` is answered 402 with ``Payment-Needed`` (the app
never runs); with one, the app runs once for it. A response that starts with a status below 400 gets
``Payment-Validation`` and, once its body is complete (streams: the last chunk), is served and
confirmed; any other outcome (an error status, an exception) confirms nothing and the agent may retry
with the same proof. The resource a proof pays for is the route's path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...errors import PaymentRequiredError
from .. import wire
from .a2m import A2MMerchant
from .headers import PAYMENT_NEEDED, PAYMENT_PROOF, PAYMENT_VALIDATION


class A2MMiddleware:
    """Prices ``prices``' paths (yuan per call) and serves each proof once."""

    def __init__(self, app: ASGIApp, merchant: A2MMerchant, prices: Mapping[str, Any]) -> None:
        self.app = app
        self.merchant = merchant
        self.prices = {path: wire.amount(price, f"prices[{path!r}]") for path, price in prices.items()}
        merchant.prices.update(self.prices)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.prices:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        proof = next((v.decode("latin-1") for k, v in scope.get("headers", ())
                      if k.decode("latin-1").lower() == PAYMENT_PROOF.lower()), None)
        try:
            admission = await self.merchant.admit(proof, path)
        except PaymentRequiredError as refusal:
            await _send_402(send, refusal)
            return
        status: list[int] = []
        complete = False

        async def tracked(message: Message) -> None:
            nonlocal complete
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
                if message["status"] < 400:
                    message = {**message, "headers": [*message.get("headers", ()),
                                                      (PAYMENT_VALIDATION.lower().encode(),
                                                       admission.validation.encode())]}
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                complete = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except BaseException as exc:
            await self.merchant.abandon(admission, f"the app failed: {type(exc).__name__}")
            raise
        if status and status[0] < 400 and complete:
            await self.merchant.fulfil(admission)
        else:
            await self.merchant.abandon(admission, f"the app answered {status[0] if status else 'nothing'}")


async def _send_402(send: Send, refusal: PaymentRequiredError) -> None:
    body = json.dumps(refusal.body(), ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    if refusal.payment_needed:
        headers.append((PAYMENT_NEEDED.lower().encode(), refusal.payment_needed.encode()))
    await send({"type": "http.response.start", "status": 402, "headers": headers})
    await send({"type": "http.response.body", "body": body})
