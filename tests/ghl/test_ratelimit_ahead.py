"""DbRateLimiter reserving slots ahead when the window has room: fewer budget transactions, the
same guarantees (no window over the limit across processes, GHL's counts compared only with
requests really sent, spare slots given back when an answer shows less room)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.conftest import make_settings
from tests.ghl.test_ratelimit import LOCATION, busiest_window, limited, other_engines  # noqa: F401
from wizesync.db import rate_budget_repo
from wizesync.ghl.rate_schedule import AHEAD_MAX_SHARE, BATCH
from wizesync.ghl.ratelimit import DbRateLimiter


async def slots(sessionmaker) -> list[float]:
    async with sessionmaker() as session:
        return await rate_budget_repo.slot_times(session, LOCATION)


async def test_spare_slots_serve_the_next_calls_without_a_transaction(
    database_url, engine, sessionmaker
):
    limiter = DbRateLimiter(sessionmaker, limited(database_url))  # 100 per 10 s
    await limiter.acquire(LOCATION)
    assert len(await slots(sessionmaker)) == BATCH
    for _ in range(BATCH - 1):
        await limiter.acquire(LOCATION)
    assert len(await slots(sessionmaker)) == BATCH  # no new reservation
    await limiter.acquire(LOCATION)
    assert len(await slots(sessionmaker)) == 2 * BATCH
    await limiter.close()


async def test_a_small_limit_reserves_one_slot_at_a_time(database_url, engine, sessionmaker):
    limiter = DbRateLimiter(sessionmaker, limited(database_url, ghl_rate_limit_max=10))
    await limiter.acquire(LOCATION)
    assert len(await slots(sessionmaker)) == 1


async def test_three_limiters_reserving_ahead_never_exceed_the_window(
    database_url,
    engine,
    other_engines,  # noqa: F811
):
    limit, window = 40, 0.6
    conf = make_settings(
        database_url, ghl_rate_limit_max=limit, ghl_rate_limit_window_seconds=window
    )
    limiters = [DbRateLimiter(sm, conf) for sm in other_engines]
    sent: list[float] = []

    async def caller(limiter: DbRateLimiter) -> None:
        for _ in range(10):
            await limiter.acquire(LOCATION)
            sent.append(time.time())
            await asyncio.sleep(0.002)
            await limiter.observe(LOCATION, 200, {"X-RateLimit-Max": "100"})

    await asyncio.gather(*(caller(limiters[n % 3]) for n in range(12)))  # 120 calls
    for limiter in limiters:
        await limiter.close()

    assert len(sent) == 120
    assert busiest_window(sent, window) <= limit


async def test_unsent_spare_slots_are_not_taken_for_requests_ghl_counted(
    database_url, engine, sessionmaker
):
    limiter = DbRateLimiter(sessionmaker, limited(database_url))
    await limiter.acquire(LOCATION)  # one sent, BATCH - 1 spare
    # GHL counts 11: ours and 10 of someone else's. The spare slots were not sent: the excess
    # past tolerance (11 - 1 - 2) is booked, not less.
    await limiter.observe(LOCATION, 200, {"X-RateLimit-Remaining": "89"})
    await limiter.flush(LOCATION)
    assert len(await slots(sessionmaker)) == BATCH + 8
    await limiter.close()


async def test_a_spare_slot_once_sent_counts_as_sent(database_url, engine, sessionmaker):
    limiter = DbRateLimiter(sessionmaker, limited(database_url))
    await limiter.acquire(LOCATION)
    await limiter.observe(LOCATION, 200, {"X-RateLimit-Remaining": "99"})
    await limiter.acquire(LOCATION)  # a spare one
    await limiter.observe(LOCATION, 200, {"X-RateLimit-Remaining": "98"})
    await limiter.flush(LOCATION)
    assert len(await slots(sessionmaker)) == BATCH  # GHL's 2 are both ours: nothing booked
    await limiter.close()


async def test_an_answer_showing_no_room_gives_the_spare_slots_back(
    database_url, engine, sessionmaker
):
    limiter = DbRateLimiter(sessionmaker, limited(database_url))
    await limiter.acquire(LOCATION)
    # GHL says 95 used: someone else's; reserving ahead assumed room that is not there.
    await limiter.observe(LOCATION, 200, {"X-RateLimit-Remaining": "5"})
    await limiter.flush(LOCATION)
    assert len(await slots(sessionmaker)) == 1 + (95 - 1 - 2)  # spare ones released
    async with sessionmaker() as session:
        budget, _ = await rate_budget_repo.lock_budget(session, LOCATION)
        assert budget.next_seq == 1 + 92  # their numbers reused: no hole in the sequence
    await limiter.close()


async def test_a_lower_limit_from_ghl_gives_the_spare_slots_back(
    database_url, engine, sessionmaker
):
    limiter = DbRateLimiter(sessionmaker, limited(database_url))
    await limiter.acquire(LOCATION)
    await limiter.observe(LOCATION, 200, {"X-RateLimit-Max": "3"})
    await limiter.acquire(LOCATION)  # not a spare one: a fresh reservation under the new limit
    await limiter.acquire(LOCATION)
    assert len(await slots(sessionmaker)) == 3
    await limiter.close()


async def test_spare_slots_not_used_in_time_are_given_back(database_url, engine, sessionmaker):
    limiter = DbRateLimiter(sessionmaker, limited(database_url))
    await limiter.acquire(LOCATION)
    # Their hand-out time passed (as if the process had been busy for half a lease).
    ready = limiter._ready[LOCATION]
    ready.extend([(seq, go, 0.0) for seq, go, _ in [ready.popleft() for _ in range(len(ready))]])
    await limiter.acquire(LOCATION)  # reserves afresh, and gives the stale spares back
    await limiter.flush(LOCATION)
    assert len(await slots(sessionmaker)) == 1 + BATCH
    await limiter.close()


# --- "reserve ahead only up to 3/4 of the window" (`_room_ahead`) ---------------------------------
# With limit 100: room = int(100 * AHEAD_MAX_SHARE) = 75. For the next seq `n` (= requests already
# in the window, numbered 0..n-1), back = n + BATCH - 1 - 75 = n - 72: with n <= 71 it is negative
# (the window holds n + BATCH <= 75: a batch); with n = 72 it is slot 0, still in the window: one.


async def book_in_window(sessionmaker, count: int) -> None:
    """`count` requests of the location in the current window (seq 0..count-1, just now)."""
    async with sessionmaker.begin() as session:
        await rate_budget_repo.lock_budget(session, LOCATION)  # creates the budget row
        now = await rate_budget_repo.clock(session)
        await rate_budget_repo.add_slots(session, LOCATION, 0, [now] * count)
        await rate_budget_repo.update_budget(session, LOCATION, next_seq=count, last_go_at=now)


def count_transactions(engine) -> list[int]:
    """A counter of the transactions begun on `engine` from now on."""
    from sqlalchemy import event

    begun = [0]

    @event.listens_for(engine.sync_engine, "begin")
    def _count(_conn) -> None:
        begun[0] += 1

    return begun


@pytest.mark.parametrize("already", [70, 71])
async def test_a_window_three_quarters_used_with_the_batch_still_reserves_ahead(
    database_url, engine, sessionmaker, already
):
    assert int(100 * AHEAD_MAX_SHARE) - BATCH == 71  # the boundary these numbers assume
    await book_in_window(sessionmaker, already)
    limiter = DbRateLimiter(sessionmaker, limited(database_url))  # 100 per 10 s
    await limiter.acquire(LOCATION)
    assert len(await slots(sessionmaker)) == already + BATCH  # a batch reserved
    begun = count_transactions(engine)
    for _ in range(BATCH - 1):
        await limiter.acquire(LOCATION)  # the spare ones: no database transaction
    assert begun[0] == 0
    assert len(await slots(sessionmaker)) == already + BATCH
    await limiter.close()


async def test_a_window_past_three_quarters_with_the_batch_reserves_one_slot(
    database_url, engine, sessionmaker
):
    already = 72  # 72 + BATCH = 76 > 75
    await book_in_window(sessionmaker, already)
    limiter = DbRateLimiter(sessionmaker, limited(database_url))
    await limiter.acquire(LOCATION)
    assert len(await slots(sessionmaker)) == already + 1  # just its own slot
    begun = count_transactions(engine)
    await limiter.acquire(LOCATION)  # nothing spare: a transaction of its own
    assert begun[0] == 1
    assert len(await slots(sessionmaker)) == already + 2
    await limiter.close()
