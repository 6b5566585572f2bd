import pytest
from e2e.conftest import _registered, deployment  # noqa: F401  (re-exported fixtures; tests/ is on sys.path)


@pytest.fixture
def no_proxy_env(monkeypatch):
    """No proxy or CA variables from the machine leak into a test."""
    from litellm_alipay.transport.egress import CLIENT_ENV

    for name in CLIENT_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch
