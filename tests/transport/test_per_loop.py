"""``PerLoop``: one item per running loop, closed exactly once — by the loop's shutdown or by ``aclose``."""

from __future__ import annotations

import asyncio

import uvloop

from litellm_alipay.transport.loop_resources import PerLoop


class Item:
    def __init__(self) -> None:
        self.closed = 0


async def _close(item: Item) -> None:
    await asyncio.sleep(0)  # a closer may await I/O: the loop must still run it
    item.closed += 1


def test_item_per_loop_closed_once_at_each_loops_shutdown():
    made: list[Item] = []
    per_loop = PerLoop(lambda: made.append(Item()) or made[-1], _close)

    async def use() -> Item:
        first = per_loop.get()
        assert per_loop.get() is first  # one per loop
        return first

    items = [asyncio.run(use()), asyncio.run(use()), uvloop.run(use())]
    assert len({id(i) for i in items}) == 3
    assert [i.closed for i in made] == [1, 1, 1]
    assert len(per_loop) == 0  # nothing kept for loops that are gone


def test_aclose_closes_now_and_the_shutdown_does_not_close_again():
    made: list[Item] = []
    per_loop = PerLoop(lambda: made.append(Item()) or made[-1], _close)

    async def use() -> None:
        first = per_loop.get()
        await per_loop.aclose()
        assert first.closed == 1
        second = per_loop.get()  # made again on next use
        assert second is not first

    asyncio.run(use())
    assert [i.closed for i in made] == [1, 1]


def test_hand_managed_loop_keeps_its_item_until_aclose():
    made: list[Item] = []
    per_loop = PerLoop(lambda: made.append(Item()) or made[-1], _close)
    async def use() -> Item:
        return per_loop.get()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(use())
        assert made[0].closed == 0  # the loop is still open: the item stays
        loop.run_until_complete(per_loop.aclose())
        assert made[0].closed == 1
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    assert made[0].closed == 1
