"""The money ledger's own rules, on both engines (a SQLite file and a real PostgreSQL): the review's findings
about releasing, overlapping attempts and settling twice, each shown here at the ledger."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from litellm_alipay.errors import PolicyError, RequestInProgressError
from litellm_alipay.ledger import FAILED, SUCCEEDED, Hold, IdempotencyKeyReusedError, Ledger, engine_for, request_id


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else f"sqlite:///{tmp_path}/l.db"
    book = Ledger(engine_for(url))
    yield book
    book.engine.close()


def _rid() -> str:
    return request_id("caller|tenant", "key-" + uuid.uuid4().hex)


async def test_a_second_attempt_while_the_first_holds_the_request_is_refused(ledger):
    """Two overlapping attempts under one key never both send (nor both ask a model)."""
    rid = _rid()
    first = await ledger.open_request(rid, "app", "fp", lease=60)
    assert first.created
    with pytest.raises(RequestInProgressError):
        await ledger.open_request(rid, "app", "fp", lease=60)
    await ledger.unbusy(rid)  # the first attempt failed and gave it back: the retry takes it at once
    again = await ledger.open_request(rid, "app", "fp", lease=60)
    assert not again.created
    await ledger.record_response(rid, {"answer": 1})
    replay = await ledger.open_request(rid, "app", "fp", lease=60)  # answered: every later attempt replays
    assert replay.response == {"answer": 1}


async def test_a_crashed_attempts_lease_runs_out(ledger):
    rid = _rid()
    await ledger.open_request(rid, "app", "fp", lease=0.0)  # a lease already over: its process died
    taken = await ledger.open_request(rid, "app", "fp", lease=60)
    assert not taken.created


async def test_a_request_with_claimed_actions_is_never_released(ledger):
    """The loop's record and its toolkit's actions are one record: a later round failing unsent must not
    forget a refund an earlier round made (the retry would ask the model again)."""
    rid = _rid()
    await ledger.open_request(rid, "app", "fp", lease=60)
    await ledger.claim_action(rid, "app", "refund", "out_trade_no=A", "rf1", 500)
    await ledger.release_request(rid)
    record = await ledger.request(rid)
    assert record is not None and [a.trade for a in record.actions] == ["out_trade_no=A"]
    empty = _rid()
    await ledger.open_request(empty, "app", "fp", lease=60)
    await ledger.release_request(empty)  # nothing claimed, nothing answered: a fallback may take the key
    assert await ledger.request(empty) is None


async def test_an_outcome_is_settled_once_and_holds_never_go_back_twice(ledger):
    day = "cap:" + uuid.uuid4().hex
    hold = Hold(day, 4000, 10000, "refund_cap_per_day")
    rid = _rid()
    row, mine = await ledger.claim_action(rid, "app", "refund", "out_trade_no=A", "rf1", 4000, [hold])
    assert mine and await ledger.total(day) == 4000
    assert await ledger.settle_action(row, FAILED, "failed", {"x": 1}, keep_cents=0)
    assert not await ledger.settle_action(row, FAILED, "failed", {"x": 2}, keep_cents=0)  # a second attempt
    assert await ledger.total(day) == 0  # not -4000
    await ledger.release_action(row)  # settled: nothing to give back
    assert await ledger.total(day) == 0
    stored = await ledger.action(rid, "refund", "out_trade_no=A")
    assert stored.state == FAILED and stored.answer == {"x": 1}  # the first outcome stands


async def test_concurrent_settlements_of_one_action_give_back_once(ledger):
    day = "cap:" + uuid.uuid4().hex
    rid = _rid()
    row, _ = await ledger.claim_action(rid, "app", "refund", "out_trade_no=A", "rf1", 3000,
                                       [Hold(day, 3000, 9000, "refund_cap_per_day")])
    settled = await asyncio.gather(*(ledger.settle_action(row, FAILED, "failed", None, keep_cents=0)
                                     for _ in range(5)))
    assert sorted(settled) == [False] * 4 + [True]
    assert await ledger.total(day) == 0
    row2, _ = await ledger.claim_action(_rid(), "app", "refund", "out_trade_no=B", "rf2", 3000,
                                        [Hold(day, 3000, 9000, "refund_cap_per_day")])
    assert await ledger.settle_action(row2, SUCCEEDED, "succeeded", None)
    assert await ledger.total(day) == 3000


async def test_a_cap_raced_by_many_claims_lets_exactly_what_fits_through(ledger):
    day = "cap:" + uuid.uuid4().hex

    async def claim(i: int) -> str:
        try:
            await ledger.claim_action(_rid(), "app", "refund", f"out_trade_no=T{i}", f"rf{i}", 2500,
                                      [Hold(day, 2500, 10000, "refund_cap_per_day")])
            return "claimed"
        except PolicyError:
            return "refused"

    outcomes = await asyncio.gather(*(claim(i) for i in range(12)))
    assert outcomes.count("claimed") == 4 and await ledger.total(day) == 10000


async def test_a_key_bound_to_one_request_refuses_another(ledger):
    rid = _rid()
    await ledger.open_request(rid, "app", "fingerprint-one")
    with pytest.raises(IdempotencyKeyReusedError):
        await ledger.open_request(rid, "app", "fingerprint-two")
