"""Item 3: the one HTTP stack honours HTTP(S)_PROXY/NO_PROXY, SSL_CERT_FILE and the deployment's ssl_verify,
through LiteLLM against the real emulator: behind a forward proxy we run, and behind TLS with a CA
we make."""

from __future__ import annotations

from urllib.parse import urlsplit

import litellm
import pytest

from litellm_alipay.errors import ConfigurationError
from litellm_alipay.settings import build_settings

from .net_helpers import forward_proxy, make_ca, tls_terminator

ASK = [{"role": "user", "content": "hello"}]
REPLY = "You said: hello"


def _sync(**deployment):
    return litellm.completion(model="alipay/ant-fin-chat", messages=ASK, **deployment).choices[0].message.content


async def _async(**deployment):
    reply = await litellm.acompletion(model="alipay/ant-fin-chat", messages=ASK, **deployment)
    return reply.choices[0].message.content


async def test_http_proxy_carries_every_transport_and_no_proxy_bypasses_it(deployment, alipay_emulator,
                                                                        no_proxy_env):
    emulator_port = urlsplit(alipay_emulator.base_url).port
    with forward_proxy() as (proxy, log):
        no_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        assert _sync(**deployment) == REPLY
        proxied = len(log.targets)
        assert await _async(**deployment) == REPLY
        assert len(log.targets) > proxied, log.targets
        through = [t for t in log.targets if f":{emulator_port}/gateway.do" in t]
        assert len(through) >= 2, log.targets  # the sync driver's loop and this one each went through it

        no_proxy_env.setenv("NO_PROXY", "127.0.0.1")
        before = len(log.targets)
        assert _sync(**deployment) == REPLY
        assert await _async(**deployment) == REPLY
        assert len(log.targets) == before  # nothing went through the proxy


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_ca(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_deployment(deployment, alipay_emulator, pki):
    with tls_terminator(pki, urlsplit(alipay_emulator.base_url).port) as tls:
        yield {**deployment, "api_base": f"https://127.0.0.1:{tls.port}/gateway.do"}


async def test_untrusted_certificate_is_a_clear_connection_error(tls_deployment, no_proxy_env):
    with pytest.raises(litellm.APIConnectionError) as sync_info:
        _sync(**tls_deployment)
    with pytest.raises(litellm.APIConnectionError) as async_info:
        await _async(**tls_deployment)
    for info in (sync_info, async_info):
        assert "not trusted" in str(info.value) and "ssl_verify" in str(info.value)
        assert not isinstance(info.value, litellm.Timeout)


async def test_ssl_verify_names_the_ca_bundle(tls_deployment, pki, no_proxy_env):
    with_ca = {**tls_deployment, "ssl_verify": str(pki.ca_path)}
    assert _sync(**with_ca) == REPLY
    assert await _async(**with_ca) == REPLY


async def test_ssl_cert_file_is_honoured(tls_deployment, pki, no_proxy_env):
    no_proxy_env.setenv("SSL_CERT_FILE", str(pki.ca_path))
    assert _sync(**tls_deployment) == REPLY
    assert await _async(**tls_deployment) == REPLY


async def test_ssl_verify_false_skips_verification(tls_deployment, no_proxy_env):
    off = {**tls_deployment, "ssl_verify": False}
    assert _sync(**off) == REPLY
    assert await _async(**off) == REPLY
    no_proxy_env.setenv("ALIPAY_SSL_VERIFY", "false")


def test_ssl_verify_setting_is_validated(deployment, tmp_path, pki):
    assert build_settings({**deployment, "ssl_verify": "true"}, env={}).ssl_verify is True
    assert build_settings(deployment, env={"ALIPAY_SSL_VERIFY": "off"}).ssl_verify is False
    assert build_settings(deployment, env={}).ssl_verify is None  # LiteLLM's default resolution
    assert build_settings({**deployment, "ssl_verify": str(pki.ca_path)}, env={}).ssl_verify == str(pki.ca_path)
    with pytest.raises(ConfigurationError, match="ssl_verify.*no file at"):
        build_settings({**deployment, "ssl_verify": str(tmp_path / "missing.pem")}, env={})
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ConfigurationError, match="ssl_verify.*no PEM certificate"):
        build_settings({**deployment, "ssl_verify": str(tmp_path / "junk.pem")}, env={})


async def test_https_proxy_tunnels_tls_to_the_gateway(tls_deployment, pki, no_proxy_env):
    with_ca = {**tls_deployment, "ssl_verify": str(pki.ca_path)}
    tls_port = urlsplit(tls_deployment["api_base"]).port
    with forward_proxy() as (proxy, log):
        no_proxy_env.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
        assert _sync(**with_ca) == REPLY
        assert await _async(**with_ca) == REPLY
        assert log.targets.count(f"CONNECT 127.0.0.1:{tls_port}") >= 2, log.targets
