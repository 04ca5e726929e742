"""Replay: put a finished event back in the queue, re-reading the body of a quarantined one."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync.db import inbox_repo
from wizesync.db.models import EventStatus, Source
from wizesync.inbox.classify import classify_ghl, classify_wizehire


async def replay(sessionmaker: async_sessionmaker[AsyncSession], event_id: int) -> str | None:
    """The event's new status, or None when there is no such event.

    Raises ValueError when the event cannot replay: still in the queue, or its body still does
    not parse (the message then says why, so the operator knows what to fix).
    """
    async with sessionmaker.begin() as session:
        event = await inbox_repo.lock_for_replay(session, event_id)
        if event is None:
            return None
        if event.status in (EventStatus.QUARANTINED, EventStatus.IGNORED):
            classified = (
                classify_wizehire(event.raw_body)
                if event.source == Source.WIZEHIRE
                else classify_ghl(event.raw_body)[0]
            )
            if classified.status != EventStatus.QUEUED:
                why = classified.error_summary or f"type {classified.type} is not handled"
                raise ValueError(f"event {event_id} still cannot be handled: {why}")
            await inbox_repo.requeue(
                session,
                event,
                type_=classified.type,
                ordering_key=classified.ordering_key,
                payload=classified.payload,
            )
        else:
            await inbox_repo.requeue(session, event)
    return EventStatus.QUEUED.value
