"""Slack incoming-webhook notifications: rate-limited, de-duplicated, and never fatal.

A flow calls `notify(...)` and moves on: a Slack outage, a 429 or a bad URL is logged and counted,
never raised, because telling a human must not stop the money from syncing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

import httpx
from prometheus_client import Counter

log = logging.getLogger(__name__)

SENT = Counter("wizesync_slack_messages_total", "Slack notifications by outcome", ["outcome"])


@dataclass(frozen=True)
class Notice:
    """One message. `key` de-duplicates: the same key within the window is sent once."""

    title: str
    lines: tuple[str, ...] = ()
    key: str | None = None
    severity: str = "info"  # info | warning | action

    def text(self) -> str:
        icon = {"info": ":information_source:", "warning": ":warning:",
                "action": ":rotating_light:"}.get(self.severity, "")
        return "\n".join([f"{icon} *{self.title}*".strip(), *self.lines])


class SlackNotifier:
    def __init__(
        self,
        http: httpx.AsyncClient,
        webhook_url: str | None,
        *,
        per_minute: int = 20,
        dedupe_seconds: float = 600.0,
    ) -> None:
        self._http = http
        self._url = webhook_url
        self._per_minute = per_minute
        self._dedupe_seconds = dedupe_seconds
        self._sent_at: list[float] = []
        self._recent: OrderedDict[str, float] = OrderedDict()
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._url)

    async def notify(self, notice: Notice) -> bool:
        """True when Slack accepted the message; False when skipped or failed (logged)."""
        if not self._url:
            return False
        async with self._lock:
            now = time.monotonic()
            if notice.key is not None:
                last = self._recent.get(notice.key)
                if last is not None and now - last < self._dedupe_seconds:
                    SENT.labels("deduplicated").inc()
                    return False
            self._sent_at = [t for t in self._sent_at if now - t < 60]
            if len(self._sent_at) >= self._per_minute:
                SENT.labels("rate_limited").inc()
                log.warning("slack notice dropped: over the rate limit",
                            extra={"notice": notice.title})
                return False
            self._sent_at.append(now)
            if notice.key is not None:
                self._recent[notice.key] = now
                while len(self._recent) > 1000:
                    self._recent.popitem(last=False)
        try:
            response = await self._http.post(self._url, json={"text": notice.text()},
                                             timeout=5.0)
        except httpx.HTTPError as exc:
            SENT.labels("failed").inc()
            log.warning("slack notice failed", extra={"error": type(exc).__name__})
            return False
        if response.status_code >= 300:
            SENT.labels("failed").inc()
            log.warning("slack notice refused", extra={"status": response.status_code})
            return False
        SENT.labels("sent").inc()
        return True
