"""What the GHL client needs from auth and rate limiting, plus the single-process implementations.

The client only sees two protocols, so OAuth (E2's `DbTokenProvider`) and a Private Integration
Token, or a per-process and a cross-process limiter, are interchangeable.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

from pydantic import SecretStr

from wizesync.ghl.errors import (
    GhlNeedsReauth,
    GhlNotInstalled,
    GhlRateLimited,
    header,
    retry_after_seconds,
)
from wizesync.retrying import Sleep, default_sleep


@runtime_checkable
class TokenProvider(Protocol):
    async def access_token(self, location_id: str) -> str:
        """A valid access token for the location (refreshed ahead of expiry if needed)."""
        ...

    async def token_rejected(self, location_id: str, token: str) -> None:
        """GHL answered 401 "invalid token" to `token`: refresh (single-flight) so the next
        `access_token()` is new; raise `GhlNeedsReauth` when no refresh is possible."""
        ...


@runtime_checkable
class RateLimiter(Protocol):
    async def acquire(self, location_id: str) -> None:
        """Wait for budget; raise `GhlRateLimited(delay)` when the wait would be too long."""
        ...

    async def observe(self, location_id: str, status: int, headers: Mapping[str, str]) -> None:
        """Learn from an answer: `X-RateLimit-*` headers and 429s tighten the budget."""
        ...


class StaticTokenProvider:
    """Private Integration Token mode: one static token for one location, nothing to refresh."""

    def __init__(self, token: SecretStr | str, location_id: str | None = None) -> None:
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self._location_id = location_id

    def __repr__(self) -> str:  # never show the token, even in a traceback's locals
        return f"StaticTokenProvider(location_id={self._location_id!r})"

    async def access_token(self, location_id: str) -> str:
        if self._location_id and location_id != self._location_id:
            raise GhlNotInstalled(
                f"this service has no GHL install for location {location_id}: its Private "
                f"Integration Token (GHL_PRIVATE_TOKEN) is for location {self._location_id} only",
                location_id=location_id,
            )
        return self._token.get_secret_value()

    async def token_rejected(self, location_id: str, token: str) -> None:
        raise GhlNeedsReauth(
            "GHL rejected the Private Integration Token: create a new one in GHL "
            "(Settings > Private Integrations) and set GHL_PRIVATE_TOKEN",
            status=401,
        )


class InMemoryRateLimiter:
    """A per-location sliding window inside one process (100 requests per 10 s by default).

    GHL counts per app and location, so its `X-RateLimit-Remaining` includes calls our other
    processes made: a lower count than ours shrinks what is left of the window. A smaller
    `X-RateLimit-Max` or a longer `X-RateLimit-Interval-Milliseconds` tightens the location's
    budget. A 429 blocks the location for `Retry-After` (or one interval), an empty daily budget
    for `daily_pause`. Waits longer than `max_wait` raise `GhlRateLimited` so a worker slot is not
    held hostage: the event is retried later.
    """

    def __init__(
        self,
        max_requests: int = 100,
        interval: float = 10.0,
        *,
        max_wait: float = 30.0,
        daily_pause: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep | None = None,
    ) -> None:
        self.max_requests = max_requests
        self.interval = interval
        self.max_wait = max_wait
        self.daily_pause = daily_pause
        self._clock = clock
        self._sleep = sleep or default_sleep
        self._windows: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._announced: dict[str, tuple[int | None, int | None]] = {}  # X-RateLimit-Max, -ms
        self._locks: dict[str, asyncio.Lock] = {}

    async def acquire(self, location_id: str) -> None:
        lock = self._locks.setdefault(location_id, asyncio.Lock())
        async with lock:  # waiters for one location queue in order; others are not affected
            while True:
                now = self._clock()
                wait = self._wait_needed(location_id, now)
                if wait <= 0:
                    self._window(location_id).append(now)
                    return
                if wait > self.max_wait:
                    raise GhlRateLimited(
                        f"rate budget for location {location_id} exhausted", delay=wait
                    )
                await self._sleep(wait)

    async def observe(self, location_id: str, status: int, headers: Mapping[str, str]) -> None:
        now = self._clock()
        server_max = _int(header(headers, "x-ratelimit-max"))
        server_ms = _int(header(headers, "x-ratelimit-interval-milliseconds"))
        if server_max or server_ms:
            old_max, old_ms = self._announced.get(location_id, (None, None))
            self._announced[location_id] = (server_max or old_max, server_ms or old_ms)
        limit, interval = self._budget(location_id)
        if status == 429:
            delay = retry_after_seconds(headers)
            self._block(location_id, now + (interval if delay is None else delay))
            return
        if _int(header(headers, "x-ratelimit-daily-remaining")) == 0:
            self._block(location_id, now + self.daily_pause)
        remaining = _int(header(headers, "x-ratelimit-remaining"))
        if remaining is None:
            return
        window = self._window(location_id)
        self._prune(window, now, interval)
        ours = limit - len(window)
        # Pad the window with "someone else's" calls so we only use what GHL says is left.
        window.extend([now] * max(0, ours - remaining))

    def remaining(self, location_id: str) -> int:
        """Calls left in the current window (for metrics and tests)."""
        limit, interval = self._budget(location_id)
        window = self._window(location_id)
        self._prune(window, self._clock(), interval)
        return max(0, limit - len(window))

    def _budget(self, location_id: str) -> tuple[int, float]:
        """Our configured budget, tightened (never loosened) by what GHL announced."""
        server_max, server_ms = self._announced.get(location_id, (None, None))
        limit = min(self.max_requests, server_max) if server_max else self.max_requests
        interval = max(self.interval, server_ms / 1000) if server_ms else self.interval
        return max(1, limit), interval

    def _wait_needed(self, location_id: str, now: float) -> float:
        limit, interval = self._budget(location_id)
        wait = self._blocked_until.get(location_id, 0.0) - now
        window = self._window(location_id)
        self._prune(window, now, interval)
        if len(window) >= limit:
            wait = max(wait, window[len(window) - limit] + interval - now)
        return wait

    def _window(self, location_id: str) -> deque[float]:
        return self._windows.setdefault(location_id, deque())

    def _prune(self, window: deque[float], now: float, interval: float) -> None:
        while window and window[0] <= now - interval:
            window.popleft()

    def _block(self, location_id: str, until: float) -> None:
        self._blocked_until[location_id] = max(self._blocked_until.get(location_id, 0.0), until)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
