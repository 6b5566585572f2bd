"""Fixtures of the resilience tests: a real Redis (shared helper), unique keys and a fake clock."""

from __future__ import annotations

import uuid

import pytest
from redis_server import redis_url  # noqa: F401  (re-exported fixture; tests/ is on sys.path)
from resilience_helpers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def key() -> str:
    """A key no other test uses, so tests can share one Redis server."""
    return f"app-{uuid.uuid4().hex[:12]}"
