import os
import tempfile

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# The processes session- and module-scoped fixtures start share one ledger of this run (never the user's).
os.environ["ALIPAY_LEDGER_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='alipay-ledger-')}/session.db"


@pytest.fixture(autouse=True)
def _closed_breakers():
    """Each test starts with closed circuit breakers: faults injected by one test must not trip the next."""
    from litellm_alipay.resilience.guards import clear_breakers

    clear_breakers()


@pytest.fixture(autouse=True)
def _fresh_ledger(tmp_path, monkeypatch):
    """Each test has its own money ledger (a SQLite file), as a fresh deployment would: keys and caps of one
    test never answer another's. Processes a test starts inherit it through ALIPAY_LEDGER_URL."""
    from litellm_alipay.ledger import LEDGER_ENV, close_ledgers

    monkeypatch.setenv(LEDGER_ENV, f"sqlite:///{tmp_path}/ledger.db")
    yield
    close_ledgers()
