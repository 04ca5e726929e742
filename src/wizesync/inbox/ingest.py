"""Store and queue an authentic event in one transaction; report what happened."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync.db import inbox_repo, inbox_store
from wizesync.db.inbox_repo import NewEvent, StoredEvent
from wizesync.db.models import EventStatus
from wizesync.inbox.classify import Classified
from wizesync.ops import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stored:
    id: int
    duplicate: bool
    status: EventStatus
    # A duplicate whose body differs from the stored one: the id was reused for another body
    # (e.g. a corrected event resent under the id of a rejected one). Nothing was stored.
    conflict: bool = False


async def store(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    source: str,
    event_id: str,
    raw_body: bytes,
    classified: Classified,
    delay_seconds: float = 0.0,
) -> Stored:
    """One INSERT .. ON CONFLICT DO NOTHING, committed before the caller answers.

    Storing is queueing (the inbox is the queue), so the INSERT is the whole unit of work and
    runs as its own transaction; a duplicate's id is then read by a second statement.

    `delay_seconds`: the event falls due that long after it was stored (GHL's settle time,
    `GHL_WEBHOOK_SETTLE_SECONDS`). Most GHL webhooks (InvoiceCreate, InvoicePaid, OrderCreate,
    OrderStatusUpdate) report what the order flow's own calls just did, a few milliseconds
    earlier, while that flow is still running and will read GHL's current state at its end.
    Handled at once, they only competed with it (for the worker, the database's write lock and
    the GHL budget) and then found nothing to do; handled a moment later, the advance they queue
    sees that a newer GHL read already stored the state and skips its GHL calls
    (`flows/payments/advance.py`). A payment made in GHL itself reaches Wizehire that much later.
    """
    new = NewEvent(
        source=source,
        event_id=event_id,
        type=classified.type,
        ordering_key=classified.ordering_key,
        status=classified.status,
        raw_body=raw_body,
        payload=classified.payload,
        last_error=classified.error_summary,
        delay_seconds=delay_seconds,
    )
    row_id, existing = await inbox_store.store_event(sessionmaker, new)
    if row_id is None:
        return await _duplicate(sessionmaker, source, event_id, raw_body, classified, existing)
    outcome = {
        EventStatus.QUEUED: "accepted",
        EventStatus.IGNORED: "ignored",
        EventStatus.QUARANTINED: "quarantined",
    }[classified.status]
    metrics.WEBHOOKS.labels(source=source, outcome=outcome, reason="").inc()
    log.info(
        "webhook stored",
        extra={
            "source": source,
            "event_id": event_id,
            "inbox_id": row_id,
            "type": classified.type,
            "outcome": outcome,
        },
    )
    return Stored(id=row_id, duplicate=False, status=classified.status)


async def _duplicate(
    sessionmaker: async_sessionmaker[AsyncSession],
    source: str,
    event_id: str,
    raw_body: bytes,
    classified: Classified,
    existing: StoredEvent | None,
) -> Stored:
    """A redelivery of the same body is a duplicate; another body under the same id is a
    conflict, answered and logged as such rather than silently dropped."""
    first_id = existing.id if existing is not None else 0
    stored_hash = existing.body_sha256 if existing is not None else None
    if existing is not None and stored_hash is None:
        async with sessionmaker() as session:
            stored_hash = await inbox_repo.stored_body_sha256(session, existing.id)
    body_hash = hashlib.sha256(raw_body).hexdigest()
    if stored_hash is not None and stored_hash != body_hash:
        metrics.WEBHOOKS.labels(source=source, outcome="conflict", reason="body_differs").inc()
        log.warning(
            "webhook id reused with a different body",
            extra={
                "source": source,
                "event_id": event_id,
                "inbox_id": first_id,
                "type": classified.type,
                "outcome": "conflict",
                "body_sha256": body_hash,
                "first_body_sha256": stored_hash,
            },
        )
        return Stored(id=first_id, duplicate=True, status=classified.status, conflict=True)
    metrics.WEBHOOKS.labels(source=source, outcome="duplicate", reason="").inc()
    log.info(
        "duplicate webhook",
        extra={
            "source": source,
            "event_id": event_id,
            "type": classified.type,
            "outcome": "duplicate",
        },
    )
    return Stored(id=first_id, duplicate=True, status=classified.status)
