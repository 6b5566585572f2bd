"""The sync driver: runs the one async implementation on a private event-loop thread.

A private loop (not ``asyncio.run`` per call) keeps the pooled connections of the async transport
alive across sync calls, and works when the caller's thread already runs a loop of its own.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_lock = threading.Lock()


def _private_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            _thread = threading.Thread(target=_loop.run_forever, name="alipay-payments-loop", daemon=True)
            _thread.start()
            atexit.register(shutdown)
        if threading.current_thread() is _thread:
            raise RuntimeError("a sync payments call from the payments loop itself; await the async method")
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Block until ``coro`` has run on the private loop; its exception is re-raised here."""
    return asyncio.run_coroutine_threadsafe(coro, _private_loop()).result()


def shutdown(timeout: float = 5.0) -> None:
    """Close the private loop's pooled connections and stop it (registered with ``atexit``)."""
    global _loop, _thread
    from ..transport.http import aclose_loop_transports

    with _lock:
        loop, thread, _loop, _thread = _loop, _thread, None, None
    if loop is None or thread is None:
        return
    try:
        asyncio.run_coroutine_threadsafe(aclose_loop_transports(), loop).result(timeout)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
