"""Slack incoming webhook: one message per `post`, paced, with Slack's answer in words.

Nothing here decides what to do about a failure: `post` raises `SlackUnavailable` (try again,
with Slack's `Retry-After` when it gave one) or `SlackRefused` (retrying cannot help: a wrong or
revoked webhook URL). Flows never call this directly: they queue a notice in their own
transaction (`wizesync.notify.outbox`), and the `internal`/`slack.notify` event posts it, so a
Slack outage delays a message instead of losing it, and never fails a flow.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import httpx
from prometheus_client import Counter

log = logging.getLogger(__name__)

# Outcomes: queued / deduplicated (a notice with that key was queued before) when a flow queues
# one; sent / failed (will retry) / rate_limited (429, will retry) / refused (4xx, dead) when the
# internal event posts it.
SENT = Counter("wizesync_slack_messages_total", "Slack notifications by outcome", ["outcome"])

# Slack allows about one message per second per webhook.
MIN_SECONDS_BETWEEN_POSTS = 1.0


@dataclass(frozen=True)
class Notice:
    """One message. `key` names what it is about: a notice with the same key is sent once."""

    title: str
    lines: tuple[str, ...] = ()
    key: str | None = None
    severity: str = "info"  # info | warning | action

    def text(self) -> str:
        icon = {
            "info": ":information_source:",
            "warning": ":warning:",
            "action": ":rotating_light:",
        }.get(self.severity, "")
        return "\n".join([f"{icon} *{self.title}*".strip(), *self.lines])


class SlackUnavailable(Exception):
    """Slack did not take the message now (network, 5xx, 429): try again later."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class SlackRefused(Exception):
    """Slack refused the webhook itself (bad URL, revoked, archived channel): a human must fix
    the configuration; trying again cannot help."""


class SlackNotifier:
    def __init__(
        self,
        http: httpx.AsyncClient,
        webhook_url: str | None,
        *,
        min_interval: float = MIN_SECONDS_BETWEEN_POSTS,
    ) -> None:
        self._http = http
        self._url = webhook_url
        self._min_interval = min_interval
        self._last_post = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._url)

    async def post(self, notice: Notice) -> None:
        """Post one message; raises `SlackUnavailable` or `SlackRefused` when Slack did not take
        it. Posts of this process are spaced `min_interval` apart (the queue already sends them
        one at a time; a 429 from Slack covers several processes)."""
        if not self._url:
            raise SlackRefused("SLACK_WEBHOOK_URL is not set")
        async with self._lock:
            wait = self._last_post + self._min_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_post = time.monotonic()
            try:
                response = await self._http.post(
                    self._url, json={"text": notice.text()}, timeout=5.0
                )
            except httpx.HTTPError as exc:
                SENT.labels("failed").inc()
                raise SlackUnavailable(f"Slack unreachable ({type(exc).__name__})") from None
        status = response.status_code
        if status < 300:
            SENT.labels("sent").inc()
            return
        said = _said(response)
        if status == 429:
            SENT.labels("rate_limited").inc()
            raise SlackUnavailable(
                f"Slack is rate-limiting us (429{said})", retry_after=retry_after_seconds(response)
            )
        if 400 <= status < 500:
            SENT.labels("refused").inc()
            raise SlackRefused(
                f"Slack refused the message: {status} {httpx.codes.get_reason_phrase(status)}"
                f"{said}; the webhook URL is wrong or was revoked (check SLACK_WEBHOOK_URL), "
                f"then replay"
            )
        SENT.labels("failed").inc()
        raise SlackUnavailable(
            f"Slack answered {status} {httpx.codes.get_reason_phrase(status)}{said}"
        )


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Slack's `Retry-After` (seconds) on a 429; None when absent or not a number."""
    value = response.headers.get("retry-after")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    if seconds is None or seconds < 0:
        return None
    return min(seconds, 3600.0)  # a broken header must not park the queue for days


def _said(response: httpx.Response) -> str:
    """What Slack said (`no_service`, `invalid_token`, `channel_is_archived`, ...), briefly."""
    text = response.text.strip()[:120]
    return f": {text}" if text else ""
