"""Ant Ling deployment settings: validated once, errors that name the setting and the fix, no key shown."""

import litellm
import pytest

from litellm_alipay.backends.ant_ling_settings import (
    DEFAULT_API_BASE,
    backend_for,
    build_ant_ling_settings,
)
from litellm_alipay.errors import ConfigurationError
from litellm_alipay.settings import SETTING_NAMES

KEY = "sk-secret-value-000000000000"


def test_defaults_and_key_from_the_environment():
    s = build_ant_ling_settings({}, env={"ANT_LING_API_KEY": KEY})
    assert s.api_base == DEFAULT_API_BASE and s.api_key == KEY
    assert KEY not in repr(s) and KEY not in s.app_id


def test_missing_key_names_the_setting_and_where_keys_come_from():
    with pytest.raises(ConfigurationError, match="api_key.*ANT_LING_API_KEY"):
        build_ant_ling_settings({}, env={})


@pytest.mark.parametrize(("given", "setting"), [
    ({"api_base": "ftp://x"}, "api_base"),
    ({"api_base": "https://openapi.alipay.com/gateway.do"}, "api_base"),
    ({"transport": "curl"}, "transport"),
    ({"price_input_per_million_usd": "cheap"}, "price_input_per_million_usd"),
    ({"slow_down_factor": 1.5}, "slow_down_factor"),
    ({"read_timeout": "soon"}, "read_timeout"),
])
def test_bad_values_name_the_setting(given, setting):
    with pytest.raises(ConfigurationError) as info:
        build_ant_ling_settings({"api_key": KEY, **given}, env={})
    assert info.value.setting == setting and KEY not in str(info.value)


def test_backend_choice_by_model_id_or_setting():
    assert backend_for("Ring-2.6-1T", {}) == "ant-ling"
    assert backend_for("AntAngelMed", {}) == "ant-ling"
    assert backend_for("ant-fin-chat", {}) == "gateway"
    assert backend_for("my-ling-finetune", {"backend": "ant_ling"}) == "ant-ling"
    assert backend_for("Ling-2.6-flash", {"backend": "gateway"}) == "gateway"
    with pytest.raises(ConfigurationError, match="backend"):
        backend_for("x", {"backend": "openai"})


def test_new_settings_are_deployment_only():
    for name in ("backend", "price_input_per_million_usd", "slow_down_hold"):
        assert name in SETTING_NAMES


def test_a_bad_deployment_reaches_the_caller_as_bad_request():
    from litellm_alipay import register

    register()
    with pytest.raises(litellm.BadRequestError, match="backend"):
        litellm.completion(model="alipay/Ling-2.6-flash", messages=[{"role": "user", "content": "hi"}],
                           backend="nonsense", api_key=KEY)
