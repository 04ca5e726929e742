"""DbRateLimiter: no window ever holds more than the limit, however many limiters (processes)
share a location; GHL's headers and 429s tighten the budget; long waits raise instead of holding
a worker. Speed is not asserted here (see benchmarks/ghl_ratelimit.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import make_settings
from wizesync.config import Settings
from wizesync.db import rate_budget_repo
from wizesync.db.engine import create_engine, create_sessionmaker
from wizesync.ghl.errors import GhlRateLimited
from wizesync.ghl.ratelimit import DbRateLimiter, headroom

LOCATION = "loc_rate_000000000000001"


def busiest_window(times: list[float], window: float) -> int:
    """The most requests any `window`-long (half-open) interval holds."""
    times = sorted(times)
    most, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


def limited(database_url: str, **overrides: object) -> Settings:
    return make_settings(database_url, **{"ghl_rate_limit_max_wait_seconds": 0.5, **overrides})


@pytest.fixture
async def other_engines(database_url: str) -> AsyncIterator[list[async_sessionmaker[AsyncSession]]]:
    """Separate engines and pools: as separate processes would have."""
    engines = [create_engine(database_url) for _ in range(3)]
    yield [create_sessionmaker(e) for e in engines]
    for e in engines:
        await e.dispose()


async def test_three_limiters_sharing_a_location_never_exceed_the_window(
    database_url, engine, other_engines, sessionmaker
):
    limit, window = 5, 0.4
    conf = make_settings(
        database_url, ghl_rate_limit_max=limit, ghl_rate_limit_window_seconds=window
    )
    limiters = [DbRateLimiter(sm, conf) for sm in other_engines]
    sent: list[float] = []

    async def caller(limiter: DbRateLimiter) -> None:
        for _ in range(4):
            await limiter.acquire(LOCATION)
            sent.append(time.time())
            await asyncio.sleep(0.002)
            await limiter.observe(LOCATION, 200, {"X-RateLimit-Max": "100"})

    await asyncio.gather(*(caller(limiters[n % 3]) for n in range(12)))  # 48 calls
    for limiter in limiters:
        await limiter.close()

    assert len(sent) == 48
    assert busiest_window(sent, window) <= limit


def test_the_window_check_itself_sees_an_overfull_window():
    assert busiest_window([0.0, 0.1, 0.2, 0.99, 1.0], 1.0) == 4
    assert busiest_window([0.0, 1.0, 2.0], 1.0) == 1


async def test_a_429_pauses_the_location_for_retry_after_or_the_interval(
    database_url, engine, sessionmaker
):
    limiter = DbRateLimiter(sessionmaker, limited(database_url))
    cases = [
        ({"Retry-After": "30"}, 30.0),
        ({"X-RateLimit-Interval-Milliseconds": "20000"}, 20.0),
        ({}, 10.0),
    ]
    for n, (headers, pause) in enumerate(cases):
        location = f"{LOCATION[:-1]}{n}"
        await limiter.acquire(location)
        await limiter.observe(location, 429, headers)
        with pytest.raises(GhlRateLimited) as caught:
            await limiter.acquire(location)
        assert pause - 5 < caught.value.delay <= pause
        async with sessionmaker() as session:
            room = (await headroom(session, limited(database_url)))[location]
        assert room.paused_for_seconds > pause - 5


async def test_less_remaining_than_our_ledger_explains_is_booked_as_used(
    database_url, engine, sessionmaker
):
    conf = limited(database_url, ghl_rate_limit_max=10)
    limiter = DbRateLimiter(sessionmaker, conf)
    await limiter.acquire(LOCATION)
    # GHL counts 7 used where we sent 1: someone else spends this location's budget.
    await limiter.observe(LOCATION, 200, {"X-RateLimit-Remaining": "3"})
    await limiter.flush(LOCATION)
    async with sessionmaker() as session:
        room = (await headroom(session, conf))[LOCATION]
    assert room.used_in_window == 1 + (7 - 1 - 2)  # our call, and the excess past tolerance
    for _ in range(10 - room.used_in_window):
        await limiter.acquire(LOCATION)
    with pytest.raises(GhlRateLimited):
        await limiter.acquire(LOCATION)


async def test_a_remaining_count_our_ledger_explains_changes_nothing(
    database_url, engine, sessionmaker
):
    conf = limited(database_url, ghl_rate_limit_max=10)
    limiter = DbRateLimiter(sessionmaker, conf)
    for n in range(3):
        await limiter.acquire(LOCATION)
        await limiter.observe(LOCATION, 200, {"X-RateLimit-Remaining": str(10 - n - 1)})
    await limiter.close()
    async with sessionmaker() as session:
        assert (await headroom(session, conf))[LOCATION].used_in_window == 3


async def test_a_lower_x_ratelimit_max_tightens_the_budget(database_url, engine, sessionmaker):
    limiter = DbRateLimiter(sessionmaker, limited(database_url))
    await limiter.acquire(LOCATION)
    await limiter.observe(
        LOCATION, 200, {"X-RateLimit-Max": "3", "X-RateLimit-Interval-Milliseconds": "10000"}
    )
    await limiter.acquire(LOCATION)
    await limiter.acquire(LOCATION)
    with pytest.raises(GhlRateLimited):
        await limiter.acquire(LOCATION)


async def test_the_daily_budget_is_counted_down_and_stops_calls_when_spent(
    database_url, engine, sessionmaker
):
    limiter = DbRateLimiter(sessionmaker, limited(database_url))
    await limiter.acquire(LOCATION)
    await limiter.observe(LOCATION, 200, {"X-RateLimit-Daily-Remaining": "2"})
    await limiter.acquire(LOCATION)
    await limiter.acquire(LOCATION)
    with pytest.raises(GhlRateLimited, match="daily") as caught:
        await limiter.acquire(LOCATION)
    assert caught.value.delay > 3000


async def test_a_refused_wait_reserves_nothing(database_url, engine, sessionmaker):
    conf = limited(database_url, ghl_rate_limit_max=2)
    limiter = DbRateLimiter(sessionmaker, conf)
    await limiter.acquire(LOCATION)
    await limiter.acquire(LOCATION)
    for _ in range(3):
        with pytest.raises(GhlRateLimited):
            await limiter.acquire(LOCATION)
    async with sessionmaker() as session:
        assert len(await rate_budget_repo.slot_times(session, LOCATION)) == 2


async def test_locations_have_separate_budgets(database_url, engine, sessionmaker):
    limiter = DbRateLimiter(sessionmaker, limited(database_url, ghl_rate_limit_max=1))
    await limiter.acquire(LOCATION)
    await limiter.acquire("loc_rate_other_0000000002")  # not held up by the first
    with pytest.raises(GhlRateLimited):
        await limiter.acquire(LOCATION)


async def test_what_an_answer_teaches_is_written_without_another_call(
    database_url, engine, sessionmaker
):
    from tests.support.waiting import eventually

    conf = limited(database_url)
    limiter = DbRateLimiter(sessionmaker, conf)
    await limiter.acquire(LOCATION)
    await limiter.observe(LOCATION, 200, {"X-RateLimit-Daily-Remaining": "0"})

    async def written() -> bool:
        async with sessionmaker() as session:
            return (await headroom(session, conf))[LOCATION].daily_remaining == 0

    await eventually(written, timeout=30, what="the daily budget to be written")
    # And another process (another limiter) now stops too.
    with pytest.raises(GhlRateLimited, match="daily"):
        await DbRateLimiter(sessionmaker, conf).acquire(LOCATION)
    await limiter.close()


async def test_the_budget_clock_is_read_after_the_lock_even_if_its_holder_changed_nothing(
    sessionmaker: async_sessionmaker[AsyncSession], is_postgres: bool
) -> None:
    """A transaction that waited for the budget's lock must read the time after the wait: every
    slot and answer it books is measured from it. (PostgreSQL computed a clock read beside the
    locked row before the wait when the holder committed without changing the row.)"""
    if not is_postgres:
        pytest.skip("SQLite's writers are serialised by BEGIN IMMEDIATE; the clock is ours")
    location = "loc-clock-after-lock"
    async with sessionmaker.begin() as session:
        await rate_budget_repo.lock_budget(session, location)  # the row exists

    async def waiter() -> float:
        async with sessionmaker.begin() as session:
            _, now = await rate_budget_repo.lock_budget(session, location)
            return now

    async with sessionmaker() as holder, holder.begin():
        await rate_budget_repo.lock_budget(holder, location)
        waiting = asyncio.create_task(waiter())
        await asyncio.sleep(0.5)
        released = await rate_budget_repo.clock(holder)
        # Leaving the block commits, having changed nothing.
    assert await waiting >= released


async def test_a_slot_due_now_is_recorded_when_its_reservation_ends_not_when_it_began(
    database_url, engine, sessionmaker, monkeypatch
):
    """The statements of a reservation take time (much of it on a loaded host); a slot due at
    once is sent after them, so that is when it must count from. Recorded at the lock, it would
    let the request a window later go early by that time."""
    limiter = DbRateLimiter(sessionmaker, limited(database_url))
    slow = 0.3
    update_budget = rate_budget_repo.update_budget

    async def slow_update_budget(*args: object, **kwargs: object) -> None:
        await asyncio.sleep(slow)  # a reservation slowed down after its clock was read
        await update_budget(*args, **kwargs)

    monkeypatch.setattr(rate_budget_repo, "update_budget", slow_update_budget)
    await limiter.acquire(LOCATION)
    returned = time.time()
    async with sessionmaker() as session:
        recorded = (await rate_budget_repo.slot_times(session, LOCATION))[0]  # others: spare
    assert returned - recorded < slow / 3
    await limiter.close()
