"""The ``redis_url`` fixture: a real, throw-away ``redis-server`` for the session.

Re-export it in a folder's conftest.py (``tests/`` is on ``sys.path`` under pytest's default import
mode)::

    from redis_server import redis_url  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from litellm_alipay.emulator.redis_server import RedisServer

__all__ = ["RedisServer", "redis_url"]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a real redis-server shared by the session; fails (never skips) if Redis is missing."""
    server = RedisServer()
    try:
        url = server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield url
    finally:
        server.stop()
