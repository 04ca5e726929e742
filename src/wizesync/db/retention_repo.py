"""Deleting finished events (and, by cascade, their attempt rows) in small batches.

Only what the queue never reads is deleted: `done` and `ignored` events by age; `dead` and
`quarantined` ones only by id, when an operator names them. A pending event is never deleted
(its ordering key's line would lose its head). Each batch is its own short transaction on rows
no claim touches; on PostgreSQL rows locked by someone else (a replay) are skipped, not waited
for.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from wizesync.db.models import EventStatus, InboxEvent

AGED_STATUSES = (EventStatus.DONE.value, EventStatus.IGNORED.value)
NAMED_STATUSES = (EventStatus.DEAD.value, EventStatus.QUARANTINED.value)


async def purge_aged_batch(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` done or ignored events received before `before` (and, if they were
    handled, handled before it too: a recent replay keeps its event). Returns how many."""
    pick = (
        select(InboxEvent.id)
        .where(
            InboxEvent.status.in_(AGED_STATUSES),
            InboxEvent.received_at < before,
            or_(InboxEvent.handled_at.is_(None), InboxEvent.handled_at < before),
        )
        .order_by(InboxEvent.received_at)
        .limit(limit)
    )
    return await _delete(session, pick)


async def purge_named(session: AsyncSession, *, status: str, event_ids: Sequence[int]) -> list[int]:
    """Delete the events among `event_ids` that are `status` (dead or quarantined); the ids
    deleted."""
    if status not in NAMED_STATUSES:
        raise ValueError(f"only {' or '.join(NAMED_STATUSES)} events are purged by id")
    pick = select(InboxEvent.id).where(
        InboxEvent.id.in_(list(event_ids)), InboxEvent.status == status
    )
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    ids = list((await session.execute(pick)).scalars())
    if ids:
        await session.execute(
            delete(InboxEvent)
            .where(InboxEvent.id.in_(ids), InboxEvent.status == status)
            .execution_options(synchronize_session=False)
        )
    return sorted(ids)


async def _delete(session: AsyncSession, pick: object) -> int:
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)  # type: ignore[attr-defined]
    ids = list((await session.execute(pick)).scalars())  # type: ignore[call-overload]
    if not ids:
        return 0
    # The status is checked again: a row replayed since it was picked stays.
    result = await session.execute(
        delete(InboxEvent)
        .where(InboxEvent.id.in_(ids), InboxEvent.status.in_(AGED_STATUSES))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]
