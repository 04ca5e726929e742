"""What a handler gets: the event, its services, the one way to open a transaction, and its
outbound-call log (which the API clients fill through `wizesync.outbound`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from wizesync.config import Settings
from wizesync.db.inbox_repo import ClaimedEvent

if TYPE_CHECKING:
    import httpx

    from wizesync.ghl.client import GhlClient
    from wizesync.mapping import Mapping
    from wizesync.wizehire.client import WizehireClient


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


class Notifier(Protocol):
    """Slack as handlers and the queue see it: configured or not. Posting is `wizesync.notify`'s
    business (a queued `slack.notify` event)."""

    @property
    def enabled(self) -> bool: ...


class Services(Protocol):
    """What handlers talk to, built once per process (`wizesync.flows.services.Services`); tests
    build their own."""

    @property
    def settings(self) -> Settings: ...

    @property
    def ghl(self) -> GhlClient: ...

    @property
    def wizehire(self) -> WizehireClient: ...

    @property
    def mapping(self) -> Mapping: ...

    @property
    def slack(self) -> Notifier: ...

    # The shared outbound client (the refund gateways build their clients on it).
    @property
    def http(self) -> httpx.AsyncClient | None: ...


class _SlackOff:
    enabled = False


class NoServices:
    """The services of a worker built without any (the queue's own tests): Slack is off, and a
    handler that reaches for a client, the mapping or the settings fails in words."""

    slack = _SlackOff()
    http = None

    @property
    def settings(self) -> NoReturn:
        raise self._missing("settings")

    @property
    def ghl(self) -> NoReturn:
        raise self._missing("GHL client")

    @property
    def wizehire(self) -> NoReturn:
        raise self._missing("Wizehire client")

    @property
    def mapping(self) -> NoReturn:
        raise self._missing("mapping")

    @staticmethod
    def _missing(what: str) -> PermanentFailure:
        return PermanentFailure(f"this worker was built without services: no {what}")


NO_SERVICES = NoServices()


@dataclass(kw_only=True)
class FlowContext:
    """What a sync step needs: its services, and the one way to open a transaction (`read()`,
    `unit_of_work()`). A handler's `EventContext` is one; the poller, which works outside any
    event, makes its own."""

    sessionmaker: async_sessionmaker[AsyncSession]
    services: Services
    # Units of work committed that wrote something: an attempt that made progress does not
    # back off further when it is retried (see the worker's `_backoff`).
    progress: int = 0

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session to read in; nothing is committed (the transaction ends with the block)."""
        async with self.sessionmaker() as session:
            yield session

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A transaction committed on exit: handlers persist each step before the next one."""
        writes = _WriteWatch()
        async with self.sessionmaker.begin() as session:
            writes.watch(session.sync_session)
            yield session
        if writes.seen:
            self.progress += 1


@dataclass(kw_only=True)
class EventContext(FlowContext):
    """A handler's context: the event it runs, and the attempt's outbound calls."""

    event: ClaimedEvent
    settings: Settings
    outbound_calls: list[dict[str, Any]] = field(default_factory=list)


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
