import pytest
from pg_server import postgres_url  # noqa: F401  (re-exported fixture; tests/ is on sys.path)
from redis_server import redis_url  # noqa: F401  (re-exported fixture; tests/ is on sys.path)

from litellm_alipay import register


@pytest.fixture(scope="session", autouse=True)
def _registered():
    register()


@pytest.fixture(scope="module")
def proxy(alipay_emulator_process):
    """The real ``litellm`` proxy on the shipped ``config/litellm.yaml``, one per module (a module may define
    its own ``proxy`` for another config)."""
    from .proxy_process import ROOT, ProxyProcess, proxy_env

    proc = ProxyProcess(ROOT / "config" / "litellm.yaml", proxy_env(alipay_emulator_process))
    yield proc
    proc.stop()


@pytest.fixture
def deployment(alipay_emulator):
    """Deployment settings for the emulator's key-mode demo app, as a user would write them."""
    return {
        "app_id": alipay_emulator.app_id,
        "app_private_key": alipay_emulator.app_private_key_path,
        "alipay_public_key": alipay_emulator.alipay_public_key_path,
        "api_base": alipay_emulator.gateway_url,
    }
