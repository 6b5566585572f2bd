"""The proxy hook in process: it rewrites the model, refuses what residency forbids, and LiteLLM's standard
logging payload carries the decision (the same payload the proxy's spend logs are written from)."""

from __future__ import annotations

import asyncio

import litellm
import pytest
from fastapi import HTTPException
from litellm.integrations.custom_logger import CustomLogger

from litellm_alipay.routing.hook import ROUTE_KEY, AssistantRouter
from litellm_alipay.routing.settings import RouteSettings


class Captured(CustomLogger):
    def __init__(self) -> None:
        super().__init__()
        self.payloads: list[dict] = []
        self.logged = asyncio.Event()

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.payloads.append(kwargs["standard_logging_object"])
        self.logged.set()


async def test_the_decision_reaches_litellm_logging(alipay_emulator):
    router = litellm.Router(model_list=[
        {"model_name": "general-chat", "litellm_params": {
            "model": "openai/general-chat", "api_base": alipay_emulator.base_url + "/v1", "api_key": "unused"}},
    ], num_retries=0)
    hook, captured = AssistantRouter(RouteSettings()), Captured()
    data = {"model": "assistant", "messages": [{"role": "user", "content": "thanks!"}],
            "metadata": {ROUTE_KEY: {"side": "alipay"}, "spend_logs_metadata": {"team": "ops", ROUTE_KEY: "forged"}}}
    data = await hook.async_pre_call_hook(None, None, data, "acompletion")
    assert data["model"] == "general-chat"
    litellm.callbacks.append(captured)
    try:
        await router.acompletion(**data)
        await asyncio.wait_for(captured.logged.wait(), timeout=30)  # callbacks run after the call returns
    finally:
        litellm.callbacks.remove(captured)
    spend = captured.payloads[0]["metadata"]["spend_logs_metadata"]
    assert spend["team"] == "ops"  # the client's own spend metadata is kept
    assert spend[ROUTE_KEY] == {"side": "regional", "reason": "trivial", "model": "general-chat",
                                "detail": "acknowledgement"}


async def test_other_models_pass_untouched_and_refusals_are_400s():
    hook = AssistantRouter(RouteSettings())
    data = {"model": "fin-chat", "messages": [{"role": "user", "content": "退款"}], "metadata": {ROUTE_KEY: "x"}}
    assert (await hook.async_pre_call_hook(None, None, data, "acompletion"))["model"] == "fin-chat"
    assert ROUTE_KEY not in data["metadata"]
    assert await hook.async_post_call_response_headers_hook(data, None, None) is None
    refused = {"model": "assistant", "messages": [{"role": "user", "content": "refund 1"}],
               "allowed_actions": ["REFUND"], "metadata": {"user_region": "EU"}}
    with pytest.raises(HTTPException) as caught:
        await hook.async_pre_call_hook(None, None, refused, "acompletion")
    assert caught.value.status_code == 400 and "alipay_consent=true" in caught.value.detail["error"]
