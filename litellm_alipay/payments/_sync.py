"""The payments' sync driver is the package's one (``transport/sync_driver.py``): one private loop per
process for every sync call, its pooled connections closed at exit."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from ..transport.sync_driver import SYNC

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Block until ``coro`` has run on the private loop; its exception is re-raised here."""
    return SYNC.run(coro)


def shutdown(timeout: float = 5.0) -> None:
    SYNC.shutdown(timeout)
