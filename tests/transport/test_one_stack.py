"""One HTTP stack (issue 22): ``h1.py`` and the httpx transport are gone. A deployment still naming
``transport`` gets a clear error unless it names the one stack left (then it changes nothing), and
``http2: true`` is refused: aiohttp speaks HTTP/1.1, and a setting that silently did nothing would lie."""

from __future__ import annotations

import importlib.util

import pytest

from litellm_alipay.backends.ant_ling_settings import build_ant_ling_settings
from litellm_alipay.errors import ConfigurationError
from litellm_alipay.settings import build_settings


def test_the_own_http_client_is_gone():
    assert importlib.util.find_spec("litellm_alipay.transport.h1") is None
    import litellm_alipay.transport.http as http

    assert not hasattr(http, "HttpxTransport") and not hasattr(http, "sync_transport")


@pytest.mark.parametrize("build", [lambda given, env: build_settings(given, env=env),
                                   lambda given, env: build_ant_ling_settings({"api_key": "k", **given, "api_base": "https://ling.test/v1"},
                                                                             env=env)],
                         ids=["gateway", "ant-ling"])
def test_transport_and_http2_settings(deployment, build):
    given = dict(deployment)
    assert build({**given, "transport": "aiohttp"}, {}) == build(given, {})  # accepted, changes nothing
    for old in ("h1", "httpx"):
        with pytest.raises(ConfigurationError) as info:
            build({**given, "transport": old}, {})
        assert info.value.setting == "transport" and "remove the setting" in str(info.value)
    assert build({**given, "http2": "false"}, {}) == build(given, {})
    with pytest.raises(ConfigurationError) as info:
        build({**given, "http2": True}, {})
    assert info.value.setting == "http2" and "HTTP/1.1" in str(info.value)


def test_the_environment_variable_is_checked_too(deployment):
    with pytest.raises(ConfigurationError, match="transport"):
        build_settings(deployment, env={"ALIPAY_TRANSPORT": "h1"})
