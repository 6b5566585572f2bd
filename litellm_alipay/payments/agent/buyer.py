"""The buyer side: an ``httpx`` auth flow that pays an A2M 402 through a wallet and retries once.

    auth = A402Auth(EmulatorWallet(emulator_url), max_total="1.00")
    client = openai.AsyncOpenAI(base_url=…, http_client=httpx.AsyncClient(auth=auth))

On a 402 carrying ``Payment-Needed`` the bill is decoded, checked against the session's spend caps
(``max_per_payment``, ``max_total``: refused with ``PolicyError`` before anything is paid), paid
through the wallet, and the request is sent again once with ``Payment-Proof``. A 402 without a bill
(retry with the same proof) is returned as is. Async only: the wallet is an async call.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from decimal import Decimal
from typing import Protocol

import httpx

from ...errors import PolicyError, ProtocolError
from .. import wire
from .headers import PAYMENT_NEEDED, PAYMENT_PROOF, decode


class Wallet(Protocol):
    async def pay(self, payment_needed: str) -> str:
        """Pay the bill (the raw header value); the ``Payment-Proof`` value to send."""


class EmulatorWallet:
    """The emulator's buyer stand-in (``POST /_admin/a402/pay``) as a wallet: tests and the demo."""

    def __init__(self, emulator_url: str, admin_token: str | None = None) -> None:
        self.url = emulator_url.rstrip("/") + "/_admin/a402/pay"
        self.headers = {"authorization": f"Bearer {admin_token}"} if admin_token else {}

    async def pay(self, payment_needed: str) -> str:
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(self.url, json={"payment_needed": payment_needed}, headers=self.headers)
        data = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
        if answer.status_code != 200 or not isinstance(data.get("payment_proof"), str):
            raise ProtocolError(f"the wallet refused to pay: {data.get('code', answer.status_code)} "
                                f"{str(data.get('error', ''))[:200]}")
        return data["payment_proof"]


class A402Auth(httpx.Auth):
    """Pays a 402 once per request, within the session's caps (yuan)."""

    def __init__(self, wallet: Wallet, *, max_total: str = "1.00", max_per_payment: str | None = None) -> None:
        self.wallet = wallet
        self.max_total = Decimal(wire.amount(max_total, "max_total"))
        self.max_per_payment = Decimal(wire.amount(max_per_payment or max_total, "max_per_payment"))
        self.spent = Decimal("0.00")
        self.payments: list[str] = []  # trade numbers are in the proofs; amounts kept here

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise ProtocolError("A402Auth pays through an async wallet: use it with httpx.AsyncClient")
        yield request  # pragma: no cover  (a generator, as httpx expects)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        response = yield request
        needed = response.headers.get(PAYMENT_NEEDED)
        if response.status_code != 402 or not needed or PAYMENT_PROOF in request.headers:
            return
        bill = decode(needed, PAYMENT_NEEDED)
        protocol = bill.get("protocol") or {}
        amount = Decimal(wire.amount(protocol.get("amount"), "Payment-Needed.protocol.amount"))
        if protocol.get("currency") != "CNY":
            raise ProtocolError("Payment-Needed asks for another currency than CNY")
        if amount > self.max_per_payment:
            raise PolicyError("max_per_payment", f"the bill asks {amount} CNY, more than {self.max_per_payment}")
        if self.spent + amount > self.max_total:
            raise PolicyError("max_total", f"paying {amount} CNY would pass the session's {self.max_total} "
                                           f"({self.spent} spent)")
        await response.aread()
        proof = await self.wallet.pay(needed)
        self.spent += amount
        self.payments.append(str(amount))
        request.headers[PAYMENT_PROOF] = proof
        yield request
