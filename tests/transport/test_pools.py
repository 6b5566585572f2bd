"""Item 3: ``pool_size`` is the keep-alive pool, not a concurrency cap.

A burst of 6 calls against a pool of 2, at a server that answers only once all 6 are in flight at the
same time: with a cap the burst can never complete (the server gives up with 503, the sync client used
to report a 408 "connect timeout"). Afterwards at most ``pool_size`` connections stay open.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

from litellm_alipay.transport.http import AiohttpTransport, HttpRequest
from litellm_alipay.transport.sync_driver import SYNC

from .net_helpers import BarrierServer

BURST, POOL = 6, 2


def _request(port: int) -> HttpRequest:
    return HttpRequest(url=f"http://127.0.0.1:{port}/gateway.do", content=b"x=1", headers={},
                       read_timeout=10, connect_timeout=1)


async def test_async_burst_beyond_pool_size_opens_connections_and_keeps_only_the_pool():
    with BarrierServer(BURST) as server:
        transport = AiohttpTransport(POOL)
        answers = await asyncio.gather(*(transport.send(_request(server.port)) for _ in range(BURST)))
        assert [a.status for a in answers] == [200] * BURST
        assert len({json.loads(a.content)["connection"] for a in answers}) == BURST  # 6 connections at once
        assert await asyncio.to_thread(server.wait_open, POOL)  # the extra 4 were closed once idle
        again = await transport.send(_request(server.port))
        assert again.status == 200 and server.connections == BURST  # reused a pooled one
        await transport.aclose()


def test_sync_burst_beyond_pool_size_is_not_a_connect_timeout():
    """Sync callers in threads share the sync driver's loop and its one pool."""
    with BarrierServer(BURST) as server:
        transport = AiohttpTransport(POOL)
        with ThreadPoolExecutor(BURST) as pool:
            answers = list(pool.map(lambda _: SYNC.run(transport.send(_request(server.port))), range(BURST)))
        assert [a.status for a in answers] == [200] * BURST
        assert server.wait_open(POOL)
        SYNC.run(transport.aclose())
        assert server.wait_open(0)
