"""GHL's rate limits as the sandbox enforces them: a sliding window per location (100 requests per
10 s by default) plus a daily budget, with the `X-RateLimit-*` headers on every answer.

The window is a sliding log: at most `max` requests in ANY span of `interval`. That is the strictest
reading of "100 per 10 s", so a client that stays under it here stays under it at GHL.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from wizesync_sandbox.clock import Clock
from wizesync_sandbox.settings import SandboxConfig


@dataclass
class Decision:
    allowed: bool
    headers: dict[str, str]
    retry_after: float = 0.0


@dataclass
class _Bucket:
    hits: deque[float] = field(default_factory=deque)
    day: str = ""
    daily: int = 0


class RateLimiter:
    def __init__(self, config: SandboxConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self.rejected: dict[str, int] = {}

    def reset(self) -> None:
        self._buckets.clear()
        self.rejected.clear()

    def hit(self, key: str) -> Decision:
        """Count one request for `key`; a request over either budget is refused and not counted."""
        now = self._clock.time()
        bucket = self._bucket(key, now)
        interval = self._config.ghl_rate_limit_interval_ms / 1000
        if len(bucket.hits) >= self._config.ghl_rate_limit_max:
            wait = bucket.hits[0] + interval - now
            self.rejected[key] = self.rejected.get(key, 0) + 1
            return Decision(False, self._headers(bucket), retry_after=max(wait, 0.001))
        if bucket.daily >= self._config.ghl_daily_limit:
            self.rejected[key] = self.rejected.get(key, 0) + 1
            return Decision(False, self._headers(bucket), retry_after=_seconds_to_midnight(now))
        bucket.hits.append(now)
        bucket.daily += 1
        return Decision(True, self._headers(bucket))

    def peek(self, key: str) -> dict[str, str]:
        """Headers for `key` without counting a request."""
        return self._headers(self._bucket(key, self._clock.time()))

    def snapshot(self) -> dict[str, dict[str, int]]:
        now = self._clock.time()
        return {
            key: {
                "in_window": len(self._bucket(key, now).hits),
                "today": self._bucket(key, now).daily,
                "rejected": self.rejected.get(key, 0),
            }
            for key in list(self._buckets)
        }

    def _bucket(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.setdefault(key, _Bucket())
        horizon = now - self._config.ghl_rate_limit_interval_ms / 1000
        while bucket.hits and bucket.hits[0] <= horizon:
            bucket.hits.popleft()
        day = datetime.fromtimestamp(now, UTC).date().isoformat()
        if bucket.day != day:
            bucket.day, bucket.daily = day, 0
        return bucket

    def _headers(self, bucket: _Bucket) -> dict[str, str]:
        config = self._config
        return {
            "X-RateLimit-Max": str(config.ghl_rate_limit_max),
            "X-RateLimit-Remaining": str(max(config.ghl_rate_limit_max - len(bucket.hits), 0)),
            "X-RateLimit-Interval-Milliseconds": str(config.ghl_rate_limit_interval_ms),
            "X-RateLimit-Limit-Daily": str(config.ghl_daily_limit),
            "X-RateLimit-Daily-Remaining": str(max(config.ghl_daily_limit - bucket.daily, 0)),
        }


def _seconds_to_midnight(now: float) -> float:
    return 86_400 - now % 86_400
