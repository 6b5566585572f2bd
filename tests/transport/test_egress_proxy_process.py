"""Behind an egress proxy and a private CA, through the real ``litellm`` proxy process: the deployment's
``ssl_verify`` (a CA bundle) and ``HTTPS_PROXY`` are honoured on the proxy's async path, plain and
streamed, as for ``litellm.completion``. The OpenAI SDK is the client."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from e2e.proxy_process import ProxyProcess, openai_client, proxy_env

from .net_helpers import forward_proxy, make_ca, tls_terminator

CONFIG = """
model_list:
  - model_name: fin-chat
    litellm_params:
      model: alipay/ant-fin-chat
      app_id: os.environ/ALIPAY_APP_ID
      app_private_key: os.environ/ALIPAY_APP_PRIVATE_KEY
      alipay_public_key: os.environ/ALIPAY_PUBLIC_KEY
      api_base: os.environ/TLS_GATEWAY_URL
      ssl_verify: os.environ/GATEWAY_CA_BUNDLE
litellm_settings:
  custom_provider_map:
    - {provider: alipay, custom_handler: litellm_alipay.alipay_llm}
"""


@pytest.fixture(scope="module")
def egress(alipay_emulator_process, tmp_path_factory):
    folder = tmp_path_factory.mktemp("egress")
    pki = make_ca(folder / "pki")
    (folder / "config.yaml").write_text(CONFIG)
    with tls_terminator(pki, urlsplit(alipay_emulator_process.base_url).port) as tls, \
            forward_proxy() as (proxy, log):
        env = proxy_env(alipay_emulator_process, TLS_GATEWAY_URL=f"https://127.0.0.1:{tls.port}/gateway.do",
                        GATEWAY_CA_BUNDLE=str(pki.ca_path), HTTPS_PROXY=f"http://127.0.0.1:{proxy.port}",
                        NO_PROXY="", no_proxy="", SSL_CERT_FILE="")
        litellm_proxy = ProxyProcess(folder / "config.yaml", env)
        try:
            yield litellm_proxy, log, tls.port
        finally:
            litellm_proxy.stop()


def test_proxy_process_reaches_a_private_ca_gateway_through_the_egress_proxy(egress, alipay_emulator):
    litellm_proxy, log, tls_port = egress
    client = openai_client(litellm_proxy)
    ask = [{"role": "user", "content": "hello"}]
    reply = client.chat.completions.create(model="fin-chat", messages=ask)
    assert reply.choices[0].message.content == "You said: hello"
    streamed = client.chat.completions.create(model="fin-chat", messages=ask, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "You said: hello"
    assert f"CONNECT 127.0.0.1:{tls_port}" in log.targets  # the gateway was reached through the egress proxy
    assert alipay_emulator.stats()["requests_by_method"]["alipay.cloud.ai.chat"] == 2
