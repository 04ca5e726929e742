"""Storing one webhook: the INSERT that queues it, through the fastest path the database has.

On PostgreSQL the statement goes straight through asyncpg (`db/inbox_driver.py`); elsewhere
through the ORM (`inbox_repo.insert_event`). Both store the same row and answer the same way, so
the caller (`inbox/ingest.py`) never asks which database it is on.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from wizesync.db import inbox_driver, inbox_repo
from wizesync.db.inbox_repo import NewEvent, StoredEvent


async def store_event(
    sessionmaker: async_sessionmaker[AsyncSession], event: NewEvent
) -> tuple[int | None, StoredEvent | None]:
    """INSERT .. ON CONFLICT DO NOTHING, committed by itself: (new row id, None) or, for a
    duplicate, (None, the event stored first)."""
    engine = sessionmaker.kw.get("bind")
    if isinstance(engine, AsyncEngine) and engine.dialect.name == "postgresql":
        return await inbox_driver.store_event(engine, event)
    async with sessionmaker.begin() as session:
        row_id = await inbox_repo.insert_event(session, event)
        if row_id is not None:
            return row_id, None
        return None, await inbox_repo.find_event(session, event.source, event.event_id)
