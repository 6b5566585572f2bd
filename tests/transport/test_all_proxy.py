"""Proxies are read the way LiteLLM reads them (issue 22): the scheme's variable, else ``ALL_PROXY``, and
``NO_PROXY`` bypasses both. The review found ``ALL_PROXY`` ignored on the default path; here it carries
plain and streamed calls, async and sync, to the real emulator through a forward proxy we run."""

from __future__ import annotations

from urllib.parse import urlsplit

import litellm

from litellm_alipay.transport.egress import proxy_for

from .net_helpers import forward_proxy

ASK = [{"role": "user", "content": "hello"}]
REPLY = "You said: hello"


async def _stream(**deployment) -> str:
    reply = await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, stream=True, **deployment)
    return "".join([c.choices[0].delta.content or "" async for c in reply if c.choices])


async def test_all_proxy_carries_plain_and_streamed_calls(deployment, alipay_emulator, no_proxy_env):
    port = urlsplit(alipay_emulator.base_url).port
    with forward_proxy() as (proxy, log):
        no_proxy_env.setenv("ALL_PROXY", f"127.0.0.1:{proxy.port}")  # no scheme: http://, as LiteLLM reads it
        settings = {**deployment, "pool_size": 29}  # a transport of its own, made under this environment
        reply = await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, **settings)
        assert reply.choices[0].message.content == REPLY
        assert await _stream(**settings) == REPLY
        sync = litellm.completion(model="alipay/ant-fin-chat", messages=ASK, **settings)
        assert sync.choices[0].message.content == REPLY
        assert [t for t in log.targets if f":{port}/gateway.do" in t], log.targets

        no_proxy_env.setenv("NO_PROXY", "127.0.0.1")
        before = len(log.targets)
        reply = await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, **settings)
        assert reply.choices[0].message.content == REPLY
        assert len(log.targets) == before  # bypassed


def test_proxy_for_follows_litellms_order(no_proxy_env):
    assert proxy_for("https://gw.example/gateway.do") is None
    no_proxy_env.setenv("ALL_PROXY", "proxy.example:3128")
    assert proxy_for("https://gw.example/gateway.do") == "http://proxy.example:3128"
    no_proxy_env.setenv("HTTPS_PROXY", "http://tls-proxy.example:8080")
    assert proxy_for("https://gw.example/gateway.do") == "http://tls-proxy.example:8080"
    assert proxy_for("http://gw.example/gateway.do") == "http://proxy.example:3128"
    no_proxy_env.setenv("NO_PROXY", "gw.example")
    assert proxy_for("https://gw.example/gateway.do") is None
    no_proxy_env.delenv("NO_PROXY")
    no_proxy_env.setenv("DISABLE_AIOHTTP_TRUST_ENV", "true")
    assert proxy_for("https://gw.example/gateway.do") is None
