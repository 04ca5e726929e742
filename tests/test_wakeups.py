"""Low latency without polling: the in-process worker is woken after commit, and a separate
worker on PostgreSQL wakes on LISTEN/NOTIFY. Polling is set to a minute, so only a wake-up can
get an event handled within the deadline."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import make_settings
from tests.support.signing import wizehire_request
from wizesync import samples
from wizesync.db import inbox_repo
from wizesync.db.inbox_repo import NewEvent
from wizesync.db.models import EventStatus, Source
from wizesync.inbox.registry import HandlerRegistry
from wizesync.inbox.worker import Worker

DEADLINE = 20.0  # far below the 60 s poll interval, generous for a shared machine


def _handled_registry(done: asyncio.Event) -> HandlerRegistry:
    registry = HandlerRegistry()

    @registry.on(Source.WIZEHIRE, "order.created")
    async def handle(ctx):  # type: ignore[no-untyped-def]
        done.set()

    return registry


async def test_webhook_wakes_the_in_process_worker_without_polling(
    database_url, engine, client_factory
):
    settings = make_settings(database_url, worker_poll_seconds=60)
    done = asyncio.Event()
    client = await client_factory(settings, registry=_handled_registry(done))
    await asyncio.sleep(0.5)  # let the worker finish its first (empty) claim and go idle
    body, headers = wizehire_request(samples.wizehire_event("order.created"))
    response = await client.post("/webhooks/wizehire", content=body, headers=headers)
    assert response.status_code == 202
    await asyncio.wait_for(done.wait(), DEADLINE)


async def test_separate_worker_wakes_on_postgres_notify(database_url, is_postgres, sessionmaker):
    if not is_postgres:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite deployments run the worker in-process")
    settings = make_settings(database_url, worker_poll_seconds=60)
    done = asyncio.Event()
    worker = Worker(settings=settings, sessionmaker=sessionmaker, registry=_handled_registry(done))
    worker.start()
    try:
        await asyncio.sleep(1.0)  # the LISTEN connection is up and the first claim found nothing
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
