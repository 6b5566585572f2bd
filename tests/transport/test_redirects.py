"""Redirects are never followed (issue 22): a gateway answering 307 would have the signed body, the user's
token and the prompt re-sent to the ``Location`` host. On the plain and the stream path, async and sync, the
call fails with an error naming that host, and the host receives nothing."""

from __future__ import annotations

import litellm
import pytest
from litellm.exceptions import MidStreamFallbackError

from litellm_alipay.errors import RedirectRefusedError
from litellm_alipay.transport.http import AiohttpTransport, HttpRequest

from .net_helpers import CannedServer, http_answer

ASK = [{"role": "user", "content": "hello"}]


@pytest.fixture
def redirecting():
    """``bait`` answers every request with a 307 to ``elsewhere`` (same machine, another name and port)."""
    with CannedServer(http_answer("200 OK", {"Content-Type": "application/json"}, b"{}")) as elsewhere:
        location = f"http://localhost:{elsewhere.port}/gateway.do"
        with CannedServer(http_answer("307 Temporary Redirect", {"Location": location})) as bait:
            yield bait, elsewhere


def _deployment(deployment, bait) -> dict:
    return {**deployment, "api_base": f"http://127.0.0.1:{bait.port}/gateway.do"}


def _refused(info: pytest.ExceptionInfo) -> None:
    text = str(info.value)
    assert "redirect" in text and "'localhost'" in text, text
    assert not isinstance(info.value, litellm.Timeout)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_a_redirect_is_refused_and_nothing_is_re_sent(deployment, redirecting, stream, no_proxy_env):
    bait, elsewhere = redirecting
    settings = _deployment(deployment, bait)
    # a stream's failure at its first chunk reaches the caller as LiteLLM's MidStreamFallbackError
    with pytest.raises((litellm.APIConnectionError, MidStreamFallbackError)) as info:
        reply = await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, stream=stream,
                                          num_retries=0, **settings)
        if stream:
            async for _ in reply:
                pass
    _refused(info)
    with pytest.raises((litellm.APIConnectionError, MidStreamFallbackError)) as info:
        reply = litellm.completion(model="alipay/ant-fin-chat", messages=ASK, stream=stream, num_retries=0,
                                   **settings)
        if stream:
            for _ in reply:
                pass
    _refused(info)
    assert bait.requests >= 2
    assert elsewhere.requests == 0  # the body (sign, tokens, prompt) never went to the Location host


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_the_transport_names_the_location_host(redirecting, stream):
    bait, elsewhere = redirecting
    transport = AiohttpTransport(2)
    request = HttpRequest(url=f"http://127.0.0.1:{bait.port}/gateway.do", content=b"sign=secret", headers={},
                          read_timeout=5, connect_timeout=5)
    with pytest.raises(RedirectRefusedError) as info:
        await transport.send(request, stream=stream)
    assert info.value.location_host == "localhost" and info.value.status == 307
    assert elsewhere.requests == 0
    await transport.aclose()
