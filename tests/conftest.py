import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(autouse=True)
def _closed_breakers():
    """Each test starts with closed circuit breakers: faults injected by one test must not trip the next."""
    from litellm_alipay.resilience.guards import clear_breakers

    clear_breakers()
