"""The ASGI middleware on a plain Starlette app, driven through httpx by the buyer auth flow (the
emulator's stand-in as wallet): 402 → pay → 200 with Payment-Validation; an app error confirms nothing
and the same proof is served on retry; the session's spend cap refuses before paying."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from litellm_alipay.errors import PolicyError
from litellm_alipay.payments.agent import headers
from litellm_alipay.payments.agent.a2m_asgi import A2MMiddleware
from litellm_alipay.payments.agent.buyer import A402Auth, EmulatorWallet

from .conftest import proof_for


class Tool:
    def __init__(self) -> None:
        self.calls = 0
        self.fail_next = False

    async def weather(self, request: Request) -> JSONResponse:
        self.calls += 1
        if self.fail_next:
            self.fail_next = False
            return JSONResponse({"error": "upstream down"}, status_code=503)
        return JSONResponse({"city": "杭州", "sky": "clear"})

    async def story(self, request: Request) -> StreamingResponse:
        self.calls += 1

        async def parts():
            for word in ("once", " upon", " a time"):
                yield word.encode()
        return StreamingResponse(parts(), media_type="text/plain")


@pytest.fixture
def tool() -> Tool:
    return Tool()


@pytest.fixture
def app(tool, merchant):
    inner = Starlette(routes=[Route("/tools/weather", tool.weather), Route("/tools/story", tool.story),
                              Route("/free", tool.weather)])
    return A2MMiddleware(inner, merchant, prices={"/tools/weather": "0.01", "/tools/story": "0.02"})


def _client(app, auth: httpx.Auth | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop.test", auth=auth)


async def test_the_buyer_pays_once_and_the_tool_runs_once(app, tool, alipay_emulator):
    auth = A402Auth(EmulatorWallet(alipay_emulator.base_url), max_total="0.05")
    async with _client(app, auth) as client:
        answer = await client.get("/tools/weather")
        assert answer.status_code == 200 and answer.json()["city"] == "杭州"
        validation = headers.decode(answer.headers["payment-validation"], headers.PAYMENT_VALIDATION)
        assert validation["resource_id"] == "/tools/weather" and validation["validated"] is True
        streamed = await client.get("/tools/story")
        assert streamed.text == "once upon a time" and "payment-validation" in streamed.headers
        assert (await client.get("/free")).status_code == 200
    assert str(auth.spent) == "0.03" and tool.calls == 3
    assert sorted(t["confirmed"] for t in alipay_emulator.stats()["a2m_trades"]) == [1, 1]


async def test_an_app_error_confirms_nothing_and_the_same_proof_is_served_once(app, tool, alipay_emulator):
    async with _client(app) as client:
        bill = await client.get("/tools/weather")
        assert bill.status_code == 402
        proof = proof_for(alipay_emulator, bill.headers["payment-needed"])
        tool.fail_next = True
        failed = await client.get("/tools/weather", headers={"Payment-Proof": proof})
        assert failed.status_code == 503 and "payment-validation" not in failed.headers
        assert alipay_emulator.stats()["a2m_trades"][0]["confirmed"] == 0
        served = await client.get("/tools/weather", headers={"Payment-Proof": proof})
        assert served.status_code == 200
        replay = await client.get("/tools/weather", headers={"Payment-Proof": proof})
        assert replay.status_code == 402 and replay.json()["code"] == "ALREADY_FULFILLED"
        assert replay.headers["payment-needed"]
    assert tool.calls == 2
    assert alipay_emulator.stats()["a2m_trades"][0]["confirmed"] == 1


async def test_the_spend_cap_refuses_before_anything_is_paid(app, tool, alipay_emulator):
    auth = A402Auth(EmulatorWallet(alipay_emulator.base_url), max_total="0.02", max_per_payment="0.01")
    async with _client(app, auth) as client:
        with pytest.raises(PolicyError, match="max_per_payment"):
            await client.get("/tools/story")  # 0.02 > 0.01 a payment
        assert (await client.get("/tools/weather")).status_code == 200
        assert (await client.get("/tools/weather")).status_code == 200
        with pytest.raises(PolicyError, match="max_total"):
            await client.get("/tools/weather")  # a third 0.01 would pass 0.02
    assert len(alipay_emulator.stats()["a2m_trades"]) == 2 and tool.calls == 2
