"""The reconciliation's share of a location's GHL request budget.

Every GHL call already goes through the budget all processes share (`ghl/ratelimit.py`: 100
requests per 10 s per location). A run reading 100,000 orders would take all of it for minutes and
the live sync (webhooks, the poller) would queue behind it. So a run's calls also pass this
per-location sliding window of `limit - reserve` requests per window: whatever the run does, at
least `reserve` requests of every window stay free for the live sync. When the live sync is idle
the run uses `(limit - reserve) / limit` of the budget (90 % with the default reserve of 10).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

from wizesync.ghl.limits import RateLimiter


class ShareLimiter:
    """`RateLimiter` that lets at most `share` calls per `window` seconds through to `inner`."""

    def __init__(
        self,
        inner: RateLimiter,
        *,
        limit: int,
        window_seconds: float,
        reserve: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.inner = inner
        self.share = max(1, limit - reserve)
        self.window = window_seconds
        self._clock = clock
        self._sleep = sleep
        self._sent: dict[str, deque[float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.calls: dict[str, int] = {}

    async def acquire(self, location_id: str) -> None:
        sent = self._sent.setdefault(location_id, deque())
        async with self._locks.setdefault(location_id, asyncio.Lock()):
            while True:
                now = self._clock()
                while sent and sent[0] <= now - self.window:
                    sent.popleft()
                if len(sent) < self.share:
                    break
                await self._sleep(sent[0] + self.window - now)
            sent.append(self._clock())
        await self.inner.acquire(location_id)
        self.calls[location_id] = self.calls.get(location_id, 0) + 1

    async def observe(self, location_id: str, status: int, headers: Mapping[str, str]) -> None:
        await self.inner.observe(location_id, status, headers)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())
