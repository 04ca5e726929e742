"""What a handler gets: the event, a way to commit its work, and its outbound-call log (which
the API clients fill through `wizesync.outbound`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from wizesync.config import Settings
from wizesync.db.inbox_repo import ClaimedEvent


class RetryLater(Exception):
    """Try again after `delay` seconds (e.g. a 429's Retry-After), counting as an attempt."""

    def __init__(
        self, reason: str, delay: float | None = None, *, alert: str | None = None
    ) -> None:
        super().__init__(reason)
        self.delay = delay
        # Set when the wait needs a human (e.g. a GHL install to re-authorise): Slack is told.
        self.alert = alert


class PermanentFailure(Exception):
    """Retrying cannot help (bad data, unmapped SKU): the event goes dead, replayable."""


@dataclass
class EventContext:
    event: ClaimedEvent
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    # `wizesync.flows.services.Services` (GHL, Wizehire, mapping, Slack); None in bare tests.
    services: Any = None
    outbound_calls: list[dict[str, Any]] = field(default_factory=list)
    # Units of work this attempt committed that wrote something: the attempt made progress, so
    # a retry after it does not back off further (see the worker's `_backoff`).
    progress: int = 0

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A transaction committed on exit: handlers persist each step before the next one."""
        writes = _WriteWatch()
        async with self.sessionmaker.begin() as session:
            writes.watch(session.sync_session)
            yield session
        if writes.seen:
            self.progress += 1


class _WriteWatch:
    """Whether a session wrote anything: an INSERT, UPDATE or DELETE that touched a row (or
    whose count the driver does not tell), or a flush of changed objects. A unit of work that
    only read, or an UPDATE that matched nothing, is no progress."""

    def __init__(self) -> None:
        self.seen = False

    def watch(self, session: Session) -> None:
        sa_event.listen(session, "do_orm_execute", self._on_execute)
        sa_event.listen(session, "after_flush", self._on_flush)

    def _on_execute(self, state: ORMExecuteState) -> Any:
        if not (state.is_insert or state.is_update or state.is_delete):
            return None
        result = state.invoke_statement()
        if getattr(result, "rowcount", -1) != 0:
            self.seen = True
        return result

    def _on_flush(self, session: Session, _context: UOWTransaction) -> None:
        if session.new or session.deleted or any(session.is_modified(obj) for obj in session.dirty):
            self.seen = True
