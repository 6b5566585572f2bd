"""Clients that live per event loop end with their loop, and ``aclose()`` ends them all on demand.

Why: an aiohttp session, an ``httpx.AsyncClient`` or a ``redis.asyncio`` client is bound to the loop that
opened it, so the transports and the Redis helpers keep one per loop. A process that runs many loops
(``asyncio.run`` per request in a worker, test runners, notebooks) used to leave every one of them open:
sockets held until exit and "Unclosed client session" at every interpreter exit.

How: next to each client, a tiny async generator is started on the client's loop and parked at its
first ``yield``. The loop tracks it through ``sys.set_asyncgen_hooks`` (asyncio and uvloop both do), and
``loop.shutdown_asyncgens()`` — which ``asyncio.run``, ``asyncio.Runner`` and uvicorn call before closing
a loop — finalises it; its ``finally`` closes the client on that loop while the loop can still run I/O.
No monkeypatching of the loop, no polling. A loop closed without ``shutdown_asyncgens`` (a bare
``loop.close()``) keeps its clients until ``aclose()`` is called on it.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: Every ``PerLoop`` and every owner of a sync client, for the package-wide ``aclose()``.
_per_loop: weakref.WeakSet[PerLoop[Any]] = weakref.WeakSet()
_sync_owners: weakref.WeakSet[Any] = weakref.WeakSet()


class PerLoop(Generic[T]):
    """One ``T`` per running event loop, made by ``factory`` on first use and closed by ``closer`` when
    the loop shuts down (or on ``aclose``)."""

    def __init__(self, factory: Callable[[], T], closer: Callable[[T], Awaitable[None]],
                 is_closed: Callable[[T], bool] | None = None) -> None:
        self._factory = factory
        self._closer = closer
        self._is_closed = is_closed
        self._lock = threading.Lock()
        # loop -> (item, guard generator). Weak keys: a loop dropped without shutdown takes its entry along.
        self._items: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[T, Any]] = (
            weakref.WeakKeyDictionary())
        _per_loop.add(self)

    def get(self) -> T:
        """The running loop's item, made (and watched for the loop's shutdown) on first use."""
        loop = asyncio.get_running_loop()
        found = self._items.get(loop)
        if found is not None and not (self._is_closed and self._is_closed(found[0])):
            return found[0]
        with self._lock:
            found = self._items.get(loop)
            if found is None or (self._is_closed and self._is_closed(found[0])):
                item = self._factory()
                self._items[loop] = (item, _watch(self, loop, item))
                return item
            return found[0]

    def __len__(self) -> int:
        """How many loops hold an item now (for tests and diagnostics)."""
        return len(self._items)

    async def _release(self, loop: asyncio.AbstractEventLoop, item: T) -> None:
        with self._lock:
            current = self._items.get(loop)
            mine = current is not None and current[0] is item
            if mine:
                del self._items[loop]
        if mine:  # else ``aclose`` (or a replacement after an outside close) dealt with it already
            await self._closer(item)

    async def aclose(self) -> None:
        """Close the running loop's item now (the next ``get`` makes a new one)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            found = self._items.pop(loop, None)
        if found is not None:
            item, guard = found
            await self._closer(item)
            if guard is not None:
                await guard.aclose()  # its finally finds the item gone from _items: nothing closed twice


async def _guard(owner: PerLoop[Any], loop: asyncio.AbstractEventLoop, item: Any) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await owner._release(loop, item)


def _watch(owner: PerLoop[Any], loop: asyncio.AbstractEventLoop, item: Any) -> Any:
    """Start a guard generator on ``loop`` up to its first ``yield``: from then on the loop's
    ``shutdown_asyncgens`` will finalise it. Asyncgen hooks register it on its first ``asend``."""
    if sys.get_asyncgen_hooks().firstiter is None:
        return None  # a loop that does not track async generators: only ``aclose()`` releases the item
    guard = _guard(owner, loop, item)
    step = guard.asend(None)
    try:
        step.send(None)
    except StopIteration:
        pass
    return guard


class ClientOwner:
    """An owner of one process-wide sync client (``_sync``, swapped under ``_lock``) and one async client
    per event loop (``_async``): the close methods both kinds of owner (HTTP, Redis) share."""

    _lock: threading.Lock
    _sync: Any
    _async: PerLoop[Any]

    def close(self) -> None:
        """Close the sync client (made again on next use)."""
        with self._lock:
            client, self._sync = self._sync, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the running loop's async client and the sync client."""
        await self._async.aclose()
        self.close()


def register_sync(owner: Any) -> None:
    """Remember an object whose ``close()`` releases process-wide (sync) clients, for ``aclose()``."""
    _sync_owners.add(owner)


async def aclose() -> None:
    """Release every client this package holds for the running event loop, and its sync clients.

    Call it before closing a loop you manage yourself (``asyncio.run`` and uvicorn need not: their
    shutdown releases the loop's clients). Clients are made again on next use.
    """
    for per_loop in list(_per_loop):
        await per_loop.aclose()
    for owner in list(_sync_owners):
        owner.close()
