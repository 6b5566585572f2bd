"""The ``postgres_url`` fixture: a real, throw-away PostgreSQL for the session (``pgserver``'s wheel
ships the server binaries, so no apt and no Docker). Re-export it in a folder's conftest.py::

    from pg_server import postgres_url  # noqa: F401
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a real PostgreSQL shared by the session; fails (never skips) if it cannot start."""
    import pgserver

    folder = tempfile.mkdtemp(prefix="alipay-pg-")
    try:
        server = pgserver.get_server(folder, cleanup_mode="delete")
    except Exception as exc:  # noqa: BLE001 - the reason is the report
        pytest.fail(f"PostgreSQL did not start (pgserver): {exc}", pytrace=False)
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
