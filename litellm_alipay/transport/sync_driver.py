"""The sync path drives the async one: one background event loop per process runs the coroutine.

Why: ``litellm.completion`` calls a custom provider's sync methods. Rather than a second implementation
of every behaviour (guards, pacing, deadline, transport, stream decoding), a sync call submits the async
one to a private loop on a daemon thread and waits for it; a sync stream pulls the async generator item
by item. The loop's pooled connections (one aiohttp session per loop) are reused across sync calls. One
driver for the whole package: the gateway, Ant Ling and the payments toolkit share it.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """A private event loop on a daemon thread, started on first use (and again after a fork)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="litellm-alipay-sync", daemon=True)
                thread.start()
                if self._loop is None:
                    atexit.register(self.shutdown)
                self._loop, self._thread = loop, thread
            if threading.current_thread() is self._thread:
                raise RuntimeError("a sync call from the sync driver's own loop; await the async method")
            return self._loop

    def shutdown(self, timeout: float = 5.0) -> None:
        """Close the loop's pooled connections and stop it (registered with ``atexit``)."""
        from .http import aclose_loop_transports

        with self._lock:
            loop, thread = self._loop, self._thread
            self._thread = None
        if loop is None or thread is None or not thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(aclose_loop_transports(), loop).result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` on the loop and return its result (or raise its exception) here."""
        return asyncio.run_coroutine_threadsafe(_wrap(awaitable), self._running()).result()

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """The items of an async generator, pulled one by one; closed on the loop when the caller stops."""
        try:
            while True:
                try:
                    item = self.run(agen.__anext__())
                except StopAsyncIteration:
                    return
                yield item
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                self.run(aclose())


async def _wrap(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


SYNC = LoopThread()
