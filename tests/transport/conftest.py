import pytest

from litellm_alipay import register


@pytest.fixture(scope="session", autouse=True)
def _registered():
    register()


@pytest.fixture
def deployment(alipay_emulator):
    """Deployment settings for the emulator's key-mode demo app."""
    return {
        "app_id": alipay_emulator.app_id,
        "app_private_key": alipay_emulator.app_private_key_path,
        "alipay_public_key": alipay_emulator.alipay_public_key_path,
        "api_base": alipay_emulator.gateway_url,
    }


@pytest.fixture
def no_proxy_env(monkeypatch):
    """No proxy or CA variables from the machine leak into a test."""
    from litellm_alipay.transport import CLIENT_ENV

    for name in CLIENT_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch
