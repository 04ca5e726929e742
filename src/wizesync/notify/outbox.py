"""Durable Slack notices: queued in the caller's transaction, posted by an internal event.

`queue_notice(session, services, notice)` inserts an `internal`/`slack.notify` event in the same
transaction as the state change the notice is about (a refund becoming
`manual_action_required`, a status Wizehire accepted, ...): both happen or neither, and the
message survives a Slack outage, a 429 or a crash. `post_notice`, the event's handler, posts it:
a Slack failure is `RetryLater` (Slack's `Retry-After` on a 429), so the worker's backoff and
attempt budget apply; a refused webhook (4xx) is a `PermanentFailure` in words; after that the
event is dead and replayable like any other (`wizesync events replay <id>`).

- The event id is `slack:<notice key>`: the inbox keeps one row per event id, so a notice whose
  cause is re-run (a redelivery, a retry, a replay) is queued once, across processes and
  restarts. Each call site's key names one occurrence (see `docs/FLOWS.md`, "Slack").
- Every notice shares the ordering key `slack`: messages go out in order, one at a time.
- Without `SLACK_WEBHOOK_URL` nothing is queued.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from wizesync.db.inbox_repo import ClaimedEvent
from wizesync.db.models import Source
from wizesync.inbox import internal
from wizesync.inbox.context import EventContext, PermanentFailure, RetryLater, Services
from wizesync.inbox.registry import registry
from wizesync.notify.slack import SENT, Notice, SlackNotifier, SlackRefused, SlackUnavailable

NOTIFY_TYPE = "slack.notify"
ORDERING_KEY = "slack"
_MAX_EVENT_ID = 200  # the column holds 255; long keys keep a readable prefix and a hash


def notices_enabled(services: Services) -> bool:
    """Is there a Slack to tell (`SLACK_WEBHOOK_URL` set in this process)?"""
    return services.slack.enabled


def notice_event_id(notice: Notice) -> str:
    """`slack:<key>`; a notice without a key is keyed by its text (the same words once)."""
    key = notice.key or "text:" + _digest(notice.text())
    event_id = f"slack:{key}"
    if len(event_id) > _MAX_EVENT_ID:
        event_id = f"{event_id[: _MAX_EVENT_ID - 17]}:{_digest(event_id)}"
    return event_id


async def queue_notice(session: AsyncSession, services: Services, notice: Notice) -> bool:
    """Queue `notice` in the caller's transaction. True when Slack will get it (queued now, or
    by an earlier run under the same key); False when Slack is not configured (nothing written).
    """
    if not notices_enabled(services):
        return False
    row_id = await internal.enqueue(
        session,
        type_=NOTIFY_TYPE,
        event_id=notice_event_id(notice),
        ordering_key=ORDERING_KEY,
        payload=notice_payload(notice),
    )
    SENT.labels("queued" if row_id is not None else "deduplicated").inc()
    return True


def dead_event_notice(event: ClaimedEvent, error: str | None) -> Notice:
    """An event died. Keyed by its attempt number, which keeps counting across replays: each
    death is told once, and an event that dies again after a replay is told again."""
    reason = error.splitlines()[0][:300] if error else "no reason recorded"
    return Notice(
        f"Event {event.id} ({event.source} {event.type}) is dead",
        (f"reason: {reason}", f"replay once fixed: wizesync events replay {event.id}"),
        key=f"dead:{event.id}:{event.attempt}",
        severity="action",
    )


def alert_notice(alert: str, event: ClaimedEvent, now: datetime) -> Notice:
    """A wait only a human can end (RetryLater(alert=...)), e.g. a GHL installation to
    re-authorise. Keyed by the alert's text and the UTC hour: repeated on every retry of every
    waiting event, it pages once an hour, neither on every attempt nor only once ever."""
    return Notice(
        alert,
        (f"event {event.id}: {event.type}",),
        key=f"alert:{alert}:{now.astimezone(UTC):%Y-%m-%dT%H}",
        severity="action",
    )


def is_notice_event(event: ClaimedEvent) -> bool:
    return event.source == Source.INTERNAL and event.type == NOTIFY_TYPE


def notice_payload(notice: Notice) -> dict[str, Any]:
    return {
        "title": notice.title,
        "lines": list(notice.lines),
        "severity": notice.severity,
        "key": notice.key,
    }


def notice_from_payload(payload: Any) -> Notice:
    try:
        return Notice(
            title=str(payload["title"]),
            lines=tuple(str(line) for line in payload.get("lines") or ()),
            key=payload.get("key"),
            severity=str(payload.get("severity") or "info"),
        )
    except (KeyError, TypeError, AttributeError):
        raise PermanentFailure(f"not a Slack notice: {str(payload)[:200]}") from None


@registry.on("internal", NOTIFY_TYPE)
async def post_notice(ctx: EventContext) -> None:
    notice = notice_from_payload(ctx.event.payload)
    slack = ctx.services.slack
    if not isinstance(slack, SlackNotifier) or not slack.enabled:
        raise PermanentFailure("SLACK_WEBHOOK_URL is not set in this worker: set it, then replay")
    try:
        await slack.post(notice)
    except SlackUnavailable as exc:
        raise RetryLater(str(exc), exc.retry_after) from None
    except SlackRefused as exc:
        raise PermanentFailure(str(exc)) from None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
