"""Low latency without polling: the in-process worker is woken after commit, and a separate
worker on PostgreSQL wakes on LISTEN/NOTIFY. Polling is set to a minute, so only a wake-up can
get an event handled within the deadline."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text

from tests.conftest import make_settings
from tests.support.signing import wizehire_request
from tests.support.waiting import eventually
from wizesync import samples
from wizesync.db import inbox_repo
from wizesync.db.inbox_repo import NewEvent
from wizesync.db.models import EventStatus, Source
from wizesync.inbox.registry import HandlerRegistry
from wizesync.inbox.worker import Worker

POLL_SECONDS = 60
DEADLINE = 20.0  # far below the poll interval, generous for a shared machine


def _handled_registry(done: asyncio.Event) -> HandlerRegistry:
    registry = HandlerRegistry()

    @registry.on(Source.WIZEHIRE, "order.created")
    async def handle(ctx):  # type: ignore[no-untyped-def]
        done.set()

    return registry


def _idle_workers(monkeypatch: pytest.MonkeyPatch) -> Callable[[], Awaitable[bool]]:
    """A check that holds once a worker waits out the poll interval with nothing to do, its
    wake-up not yet set: only a wake-up gets it going before the poll. The check must hold on
    two reads in a row, so a wake-up already on its way (the LISTEN connection's first) lands
    first."""
    sleeping: list[int] = []  # ids of the idle waits under way
    entered = itertools.count(1)
    original = Worker._sleep

    async def sleep(self: Worker, seconds: float) -> bool:
        wait = next(entered)
        if seconds >= POLL_SECONDS:  # the idle wait; shorter ones are backoff or coalescing
            sleeping.append(wait)
        try:
            return await original(self, seconds)
        finally:
            if wait in sleeping:
                sleeping.remove(wait)

    monkeypatch.setattr(Worker, "_sleep", sleep)
    last: list[int] = []

    async def idle() -> bool:
        held = bool(sleeping) and sleeping == last
        last[:] = sleeping
        return held

    return idle


async def test_webhook_wakes_the_in_process_worker_without_polling(
    database_url, engine, client_factory, monkeypatch
):
    settings = make_settings(database_url, worker_poll_seconds=POLL_SECONDS)
    done = asyncio.Event()
    idle = _idle_workers(monkeypatch)
    client = await client_factory(settings, registry=_handled_registry(done))
    await eventually(idle, what="the worker's first (empty) claim, then idle")
    body, headers = wizehire_request(samples.wizehire_event("order.created"))
    response = await client.post("/webhooks/wizehire", content=body, headers=headers)
    assert response.status_code == 202
    await asyncio.wait_for(done.wait(), DEADLINE)


async def test_separate_worker_wakes_on_postgres_notify(
    database_url, is_postgres, sessionmaker, monkeypatch
):
    if not is_postgres:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite deployments run the worker in-process")
    settings = make_settings(database_url, worker_poll_seconds=POLL_SECONDS)
    done = asyncio.Event()
    idle = _idle_workers(monkeypatch)
    worker = Worker(settings=settings, sessionmaker=sessionmaker, registry=_handled_registry(done))
    worker.start()
    try:
        await eventually(lambda: _listening(sessionmaker), what="the worker's LISTEN connection")
        await eventually(idle, what="the worker's first (empty) claim, then idle")
        # Another process's INSERT, as far as this worker can tell: no wake() is called.
        async with sessionmaker.begin() as session:
            await inbox_repo.insert_event(
                session,
                NewEvent(
                    source=Source.WIZEHIRE,
                    event_id="notify-1",
                    type="order.created",
                    ordering_key="k",
                    status=EventStatus.QUEUED,
                    raw_body=b"{}",
                    payload={},
                ),
            )
        await asyncio.wait_for(done.wait(), DEADLINE)
    finally:
        await worker.stop()


async def _listening(sessionmaker) -> bool:  # type: ignore[no-untyped-def]
    """A session of this database has run its LISTEN and is idle (the answer is sent)."""
    async with sessionmaker() as session:
        found = await session.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state = 'idle' AND query ILIKE 'LISTEN %'"
            )
        )
        return bool(found.scalar_one())
