"""The single-process rate limiter and the Private Integration Token provider (a fake clock
stands in for time: nothing here waits for real)."""

from __future__ import annotations

import pytest

from tests.support.ghl_kit import LOC
from wizesync.ghl.errors import GhlNeedsReauth, GhlNotInstalled, GhlRateLimited
from wizesync.ghl.limits import (
    InMemoryRateLimiter,
    RateLimiter,
    StaticTokenProvider,
    TokenProvider,
)

OTHER = "Z4Bxl8J4SaPEPLq9IQ8g"


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def _limiter(t: FakeTime, **kw) -> InMemoryRateLimiter:
    return InMemoryRateLimiter(clock=t.clock, sleep=t.sleep, **kw)


async def test_calls_within_budget_go_at_once_and_the_next_waits_for_the_window() -> None:
    t = FakeTime()
    limiter = _limiter(t, max_requests=3, interval=10.0)
    for _ in range(3):
        await limiter.acquire(LOC)
        t.now += 1.0
    assert t.waits == []
    await limiter.acquire(LOC)  # the first call (at 1000) leaves the window at 1010
    assert t.waits == [pytest.approx(7.0)]
    assert t.now == pytest.approx(1010.0)


async def test_locations_have_separate_budgets() -> None:
    t = FakeTime()
    limiter = _limiter(t, max_requests=2, interval=10.0)
    await limiter.acquire(LOC)
    await limiter.acquire(LOC)
    await limiter.acquire(OTHER)
    await limiter.acquire(OTHER)
    assert t.waits == []
    assert limiter.remaining(LOC) == 0 and limiter.remaining(OTHER) == 0


async def test_ghl_reporting_fewer_calls_left_shrinks_our_budget() -> None:
    """Another process of ours used part of the window: GHL's count wins."""
    t = FakeTime()
    limiter = _limiter(t, max_requests=100, interval=10.0)
    await limiter.acquire(LOC)
    await limiter.observe(LOC, 200, {"X-RateLimit-Remaining": "2", "X-RateLimit-Max": "100"})
    assert limiter.remaining(LOC) == 2
    await limiter.acquire(LOC)
    await limiter.acquire(LOC)
    assert t.waits == []
    await limiter.acquire(LOC)
    assert t.waits == [pytest.approx(10.0)]


async def test_ghl_reporting_more_left_than_we_think_does_not_loosen_our_budget() -> None:
    t = FakeTime()
    limiter = _limiter(t, max_requests=3, interval=10.0)
    for _ in range(3):
        await limiter.acquire(LOC)
    await limiter.observe(LOC, 200, {"x-ratelimit-remaining": "97"})
    assert limiter.remaining(LOC) == 0


async def test_429_blocks_the_location_for_retry_after() -> None:
    t = FakeTime()
    limiter = _limiter(t)
    await limiter.observe(LOC, 429, {"Retry-After": "5"})
    await limiter.acquire(OTHER)
    assert t.waits == []
    await limiter.acquire(LOC)
    assert t.waits == [pytest.approx(5.0)]


async def test_429_without_retry_after_blocks_for_the_interval_header() -> None:
    t = FakeTime()
    limiter = _limiter(t)
    await limiter.observe(LOC, 429, {"X-RateLimit-Interval-Milliseconds": "4000"})
    await limiter.acquire(LOC)
    assert t.waits == [pytest.approx(4.0)]


async def test_wait_longer_than_max_wait_raises_rate_limited_instead_of_sleeping() -> None:
    t = FakeTime()
    limiter = _limiter(t, max_wait=30.0)
    await limiter.observe(LOC, 429, {"Retry-After": "90"})
    with pytest.raises(GhlRateLimited) as caught:
        await limiter.acquire(LOC)
    assert caught.value.delay == pytest.approx(90.0)
    assert t.waits == []


async def test_empty_daily_budget_pauses_the_location() -> None:
    t = FakeTime()
    limiter = _limiter(t, daily_pause=600.0)
    await limiter.observe(
        LOC, 200, {"X-RateLimit-Daily-Remaining": "0", "X-RateLimit-Remaining": "50"}
    )
    with pytest.raises(GhlRateLimited) as caught:
        await limiter.acquire(LOC)
    assert caught.value.delay == pytest.approx(600.0)


async def test_junk_rate_limit_headers_are_ignored() -> None:
    t = FakeTime()
    limiter = _limiter(t, max_requests=5)
    await limiter.observe(
        LOC, 200, {"X-RateLimit-Remaining": "lots", "X-RateLimit-Daily-Remaining": ""}
    )
    assert limiter.remaining(LOC) == 5


async def test_private_integration_token_serves_its_own_location_only() -> None:
    tokens = StaticTokenProvider("pit-secret-value", LOC)
    assert await tokens.access_token(LOC) == "pit-secret-value"
    with pytest.raises(GhlNotInstalled, match=f"no GHL install for location {OTHER}"):
        await tokens.access_token(OTHER)
    with pytest.raises(GhlNeedsReauth):  # nothing to refresh: a human makes a new token
        await tokens.token_rejected(LOC, "pit-secret-value")
    assert "pit-secret-value" not in repr(tokens)


def test_shipped_implementations_satisfy_the_protocols() -> None:
    assert isinstance(StaticTokenProvider("x"), TokenProvider)
    assert isinstance(InMemoryRateLimiter(), RateLimiter)


async def test_smaller_limit_announced_by_ghl_tightens_that_location_only() -> None:
    t = FakeTime()
    limiter = _limiter(t, max_requests=100, interval=10.0)
    await limiter.observe(
        LOC, 200, {"X-RateLimit-Max": "2", "X-RateLimit-Interval-Milliseconds": "20000"}
    )
    await limiter.acquire(LOC)
    await limiter.acquire(LOC)
    assert limiter.remaining(LOC) == 0 and limiter.remaining(OTHER) == 100
    await limiter.acquire(LOC)
    assert t.waits == [pytest.approx(20.0)]  # the longer, announced window
