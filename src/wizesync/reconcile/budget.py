"""The reconciliation's share of a location's GHL request budget.

Every GHL call already goes through the budget all processes share (`ghl/ratelimit.py`: 100
requests per 10 s per location). A run reading 100,000 orders would take all of it for minutes and
the live sync (webhooks, the poller) would queue behind it. So a run's calls also pass this
per-location sliding window of `limit - reserve` requests per window: whatever the run does, at
least `reserve` requests of every window stay free for the live sync. When the live sync is idle
the run uses `(limit - reserve) / limit` of the budget (90 % with the default reserve of 10).

GHL counts a request when it arrives, somewhere between our send and its answer, and the time
from one to the other varies (the first call of a run opens a connection; a slow page takes
longer). So a call counts in the window from its send until it is answered, and from its answer
after that: a window that counted sends only would let the next window's first call out while
GHL still counts a slow earlier one in its own window.
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
        # Per location, in time order: when calls still unanswered were sent, and when answered
        # calls were answered. Only the multiset matters, so an answer turns the oldest send
        # stamp into an answer stamp, whichever call it answers: every stamp stays at or
        # before the call's own answer (the latest moment GHL may have counted it).
        self._in_flight: dict[str, deque[float]] = {}
        self._answered: dict[str, deque[float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.calls: dict[str, int] = {}

    async def acquire(self, location_id: str) -> None:
        in_flight = self._in_flight.setdefault(location_id, deque())
        answered = self._answered.setdefault(location_id, deque())
        async with self._locks.setdefault(location_id, asyncio.Lock()):
            while True:
                now = self._clock()
                for stamps in (in_flight, answered):
                    while stamps and stamps[0] <= now - self.window:
                        stamps.popleft()
                if len(in_flight) + len(answered) < self.share:
                    break
                oldest = min(stamps[0] for stamps in (in_flight, answered) if stamps)
                await self._sleep(oldest + self.window - now)
            # The shared budget may hold the call back further (the live sync is busy): the
            # window counts from the moment the call goes out, not the moment it was let
            # through here, or calls held back would bunch with the next window's.
            await self.inner.acquire(location_id)
            in_flight.append(self._clock())
        self.calls[location_id] = self.calls.get(location_id, 0) + 1

    async def observe(self, location_id: str, status: int, headers: Mapping[str, str]) -> None:
        in_flight = self._in_flight.get(location_id)
        if in_flight:
            in_flight.popleft()
        self._answered.setdefault(location_id, deque()).append(self._clock())
        await self.inner.observe(location_id, status, headers)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())
