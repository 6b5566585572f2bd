"""The proxy hook in process: it rewrites the model, refuses what residency forbids, and writes the decision
where LiteLLM's standard logging payload (and so the proxy's spend logs) takes it from."""

from __future__ import annotations

import litellm
import pytest
from fastapi import HTTPException
from litellm.types.utils import StandardLoggingMetadata

from litellm_alipay.routing.hook import ROUTE_KEY, AssistantRouter
from litellm_alipay.routing.settings import RouteSettings


async def test_the_decision_reaches_litellm_logging(alipay_emulator):
    """The hook writes the decision where LiteLLM's standard logging payload copies metadata from
    (``StandardLoggingMetadata`` keys: ``spend_logs_metadata``), and the rewritten request runs as is.

    Why not wait for a success callback here: LiteLLM's async logging worker is bound to the first event loop
    that used it, so in a full test session a callback may never run on this test's loop (observed)."""
    router = litellm.Router(model_list=[
        {"model_name": "general-chat", "litellm_params": {
            "model": "openai/general-chat", "api_base": alipay_emulator.base_url + "/v1", "api_key": "unused"}},
    ], num_retries=0)
    hook = AssistantRouter(RouteSettings())
    data = {"model": "assistant", "messages": [{"role": "user", "content": "thanks!"}],
            "metadata": {ROUTE_KEY: {"side": "alipay"}, "spend_logs_metadata": {"team": "ops", ROUTE_KEY: "forged"}}}
    data = await hook.async_pre_call_hook(None, None, data, "acompletion")
    assert data["model"] == "general-chat"
    assert "spend_logs_metadata" in StandardLoggingMetadata.__annotations__
    spend = data["metadata"]["spend_logs_metadata"]
    assert spend["team"] == "ops"  # the client's own spend metadata is kept
    assert spend[ROUTE_KEY] == {"side": "regional", "reason": "trivial", "model": "general-chat",
                                "detail": "acknowledgement"}
    reply = await router.acompletion(**data)
    assert reply.choices[0].message.content == "You said: thanks!"
    assert alipay_emulator.stats()["openai_requests"] == {"chat.completions": 1}


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
