"""In-process worker tests: queue events directly, run real workers, watch the database.

Nothing here sleeps a fixed time to "let the worker work": tests poll the database for the state
they expect, with a generous deadline, so a slow shared machine makes them slower, never red.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync.config import Settings
from wizesync.db import inbox_repo
from wizesync.db.inbox_repo import ClaimedEvent, NewEvent
from wizesync.db.models import EventStatus, InboxEvent, WorkerHeartbeat
from wizesync.inbox.context import EventContext
from wizesync.inbox.registry import HandlerRegistry
from wizesync.inbox.worker import Worker

SOURCE = "wizehire"
TYPE = "order.created"

Sessionmaker = async_sessionmaker[AsyncSession]


async def add_event(
    sessionmaker: Sessionmaker,
    *,
    key: str | None = None,
    source: str = SOURCE,
    type_: str = TYPE,
    status: EventStatus = EventStatus.QUEUED,
    payload: Any = None,
    raw_body: bytes | None = None,
) -> int:
    """Store one event the way ingest does (one INSERT, committed) and return its inbox id."""
    payload = {"n": uuid.uuid4().hex} if payload is None else payload
    new = NewEvent(
        source=source,
        event_id=f"evt_{uuid.uuid4().hex}",
        type=type_,
        ordering_key=key,
        status=status,
        raw_body=raw_body if raw_body is not None else json.dumps(payload).encode(),
        payload=payload,
    )
    async with sessionmaker.begin() as session:
        row_id = await inbox_repo.insert_event(session, new)
    assert row_id is not None
    return row_id


async def finish_attempt(
    session: AsyncSession,
    *,
    event: ClaimedEvent,
    worker_id: str,
    outcome: EventStatus,
    **fields: Any,
) -> bool:
    """`inbox_repo.finish_attempts` for one attempt (`fields`: the rest of its `Outcome`):
    False when the lease was lost."""
    owned = await inbox_repo.finish_attempts(
        session,
        worker_id=worker_id,
        outcomes=[inbox_repo.Outcome(event=event, status=outcome, **fields)],
    )
    return event.id in owned


async def load(sessionmaker: Sessionmaker, event_id: int) -> InboxEvent:
    """The event with its attempt log, read fresh."""
    async with sessionmaker() as session:
        event = await inbox_repo.get_event(session, event_id)
    assert event is not None, f"no event {event_id}"
    return event


async def heartbeat_row(sessionmaker: Sessionmaker, worker_id: str) -> WorkerHeartbeat | None:
    async with sessionmaker() as session:
        return await session.get(WorkerHeartbeat, worker_id)


def new_worker(
    settings: Settings,
    sessionmaker: Sessionmaker,
    registry: HandlerRegistry,
    worker_id: str | None = None,
) -> Worker:
    return Worker(
        settings=settings, sessionmaker=sessionmaker, registry=registry, worker_id=worker_id
    )


@asynccontextmanager
async def running_worker(
    settings: Settings,
    sessionmaker: Sessionmaker,
    registry: HandlerRegistry,
    *,
    worker_id: str | None = None,
    grace: float = 10.0,
) -> AsyncIterator[Worker]:
    """A started worker, stopped (and its main task awaited) when the block ends."""
    worker = new_worker(settings, sessionmaker, registry, worker_id)
    worker.start()
    try:
        yield worker
    finally:
        await worker.stop(grace_seconds=grace)


@dataclass
class RunLog:
    """Who ran when, in the order it happened: every handler start and end, under a lock.

    Handlers of one process share this log, also across several Worker instances, so a per-key
    overlap between two workers shows up exactly like one inside a single worker.
    """

    entries: list[tuple[str, int, str | None, int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, phase: str, ctx: EventContext) -> None:
        with self._lock:
            self.entries.append((phase, ctx.event.id, ctx.event.ordering_key, ctx.event.attempt))

    def handler(
        self, body: Callable[[EventContext], Awaitable[None]] | None = None
    ) -> Callable[[EventContext], Awaitable[None]]:
        """A handler that logs start/end around `body` (default: yield to others a few times)."""

        async def handle(ctx: EventContext) -> None:
            self.note("start", ctx)
            try:
                if body is not None:
                    await body(ctx)
                else:
                    # Yield so other in-flight handlers get to interleave with this one.
                    for _ in range(3):
                        await asyncio.sleep(0.005)
            finally:
                self.note("end", ctx)

        return handle

    def starts(self) -> Counter[int]:
        return Counter(event_id for phase, event_id, _, _ in self.entries if phase == "start")

    def overlaps(self) -> list[str]:
        """Every moment two handlers of one ordering key were running at once."""
        running: dict[str, int] = {}
        problems = []
        for phase, event_id, key, _ in self.entries:
            if key is None:
                continue
            if phase == "start":
                if key in running:
                    problems.append(f"key {key}: {event_id} started while {running[key]} ran")
                running[key] = event_id
            elif running.get(key) == event_id:
                del running[key]
        return problems

    def starts_by_key(self) -> dict[str, list[int]]:
        """Per ordering key, the inbox ids in the order their handlers started (with retries)."""
        by_key: dict[str, list[int]] = defaultdict(list)
        for phase, event_id, key, _ in self.entries:
            if phase == "start" and key is not None:
                by_key[key].append(event_id)
        return dict(by_key)

    def max_parallel(self) -> int:
        running, peak = 0, 0
        for phase, *_ in self.entries:
            running += 1 if phase == "start" else -1
            peak = max(peak, running)
        return peak
