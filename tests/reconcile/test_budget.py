"""The run's share of a location's GHL budget: never more than `limit - reserve` per window."""

from __future__ import annotations

from collections.abc import Mapping

from wizesync.reconcile.budget import ShareLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Counting:
    def __init__(self) -> None:
        self.acquired: list[str] = []
        self.observed: list[int] = []

    async def acquire(self, location_id: str) -> None:
        self.acquired.append(location_id)

    async def observe(self, location_id: str, status: int, headers: Mapping[str, str]) -> None:
        self.observed.append(status)


async def test_the_run_leaves_the_reserve_of_every_window() -> None:
    clock, inner = Clock(), Counting()
    limiter = ShareLimiter(
        inner, limit=100, window_seconds=10.0, reserve=10, clock=clock.time, sleep=clock.sleep
    )
    sent_at = []
    for _ in range(200):
        await limiter.acquire("loc")
        sent_at.append(clock.now)
    # Any 10 s window holds at most 90 of the run's calls; the 91st waits for the 1st to age.
    assert all(sum(1 for t in sent_at if start <= t < start + 10.0) <= 90 for start in sent_at)
    assert sent_at[89] == 0.0 and sent_at[90] == 10.0
    assert len(inner.acquired) == 200 and limiter.total_calls == 200
    # Other locations have their own share.
    await limiter.acquire("other")
    assert limiter.calls == {"loc": 200, "other": 1}
    await limiter.observe("loc", 200, {})
    assert inner.observed == [200]


async def test_a_reserve_as_large_as_the_limit_still_lets_one_call_through() -> None:
    clock, inner = Clock(), Counting()
    limiter = ShareLimiter(
        inner, limit=5, window_seconds=1.0, reserve=5, clock=clock.time, sleep=clock.sleep
    )
    await limiter.acquire("loc")
    await limiter.acquire("loc")
    assert limiter.share == 1 and clock.now == 1.0


async def test_a_call_counts_in_the_window_until_it_is_answered() -> None:
    """GHL counts a call when it arrives, at the latest when it answers: a slow call answered
    at 0.5 s keeps its place in the window until 1.5 s, not only until 1.0 s after its send."""
    clock, inner = Clock(), Counting()
    limiter = ShareLimiter(
        inner, limit=3, window_seconds=1.0, reserve=1, clock=clock.time, sleep=clock.sleep
    )
    await limiter.acquire("loc")  # a slow call
    await limiter.acquire("loc")  # a fast one
    await limiter.observe("loc", 200, {})  # the fast one answers at once
    clock.now = 0.5
    await limiter.observe("loc", 200, {})  # the slow one answers

    await limiter.acquire("loc")  # the share (2) is full until the fast one ages out
    assert clock.now == 1.0
    await limiter.acquire("loc")  # ... and then until the slow one's answer ages out
    assert clock.now == 1.5
    assert inner.observed == [200, 200]
