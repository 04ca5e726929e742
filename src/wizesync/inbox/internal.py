"""Internal events: follow-up work a handler puts in the inbox instead of doing it in place.

A handler that must start other work (advance a Wizehire order because GHL reported its invoice
paid, tell Slack something durably) inserts an event of source `internal` in its own unit of
work. It then gets everything a webhook gets: it survives a crash, waits its turn behind the other
events of its ordering key (so it never races the order's own events), is retried with backoff,
goes dead with a reason, and can be replayed.

`event_id` makes the enqueue idempotent: a handler that runs twice (a retry, a redelivery) queues
its follow-up once, because the inbox keeps one row per (source, event_id).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from wizesync.db import inbox_repo
from wizesync.db.inbox_repo import NewEvent
from wizesync.db.models import EventStatus, Source


async def enqueue(
    session: AsyncSession,
    *,
    type_: str,
    event_id: str,
    ordering_key: str | None,
    payload: dict[str, Any],
) -> int | None:
    """Queue an internal event in the caller's transaction; its row id, or None when an event
    with this `event_id` was queued before (then nothing is written)."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str)
    return await inbox_repo.insert_event(
        session,
        NewEvent(
            source=Source.INTERNAL.value,
            event_id=event_id[:255],
            type=type_,
            ordering_key=ordering_key,
            status=EventStatus.QUEUED,
            raw_body=body.encode(),
            payload=json.loads(body),
        ),
    )
