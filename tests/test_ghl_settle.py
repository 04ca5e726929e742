"""GHL's settle time (`GHL_WEBHOOK_SETTLE_SECONDS`): a GHL webhook is stored and answered at once
but falls due that long after it arrived, and the in-process worker is woken when it falls due.
Wizehire webhooks, a settle time of 0 and replays are due at once; a duplicate changes nothing."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from tests.conftest import make_settings
from tests.support.signing import ghl_request, wizehire_request
from tests.support.waiting import eventually, wait_for_status
from wizesync import samples
from wizesync.config import Settings
from wizesync.db.base import utcnow
from wizesync.db.models import EventStatus, InboxEvent, Source
from wizesync.inbox.registry import HandlerRegistry
from wizesync.inbox.worker import Worker

GHL_URL, WIZEHIRE_URL = "/webhooks/ghl", "/webhooks/wizehire"
DEADLINE = 20.0  # generous for a shared machine; far below the 60 s poll of the wake-up test


class Runs:
    """A test handler for GHL `OrderCreate` and Wizehire `order.created`: when each run began."""

    def __init__(self) -> None:
        self.started: list[datetime] = []
        self.registry = HandlerRegistry()

        async def handle(ctx: Any) -> None:
            self.started.append(utcnow())

        self.registry.on(Source.GHL, "OrderCreate")(handle)
        self.registry.on(Source.WIZEHIRE, "order.created")(handle)


async def post_ghl(client: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> int:
    response = await client.post(GHL_URL, content=body, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    return response.json()["id"]


async def row(sessionmaker: Any, event_id: int) -> InboxEvent:
    async with sessionmaker() as session:
        return (
            await session.execute(select(InboxEvent).where(InboxEvent.id == event_id))
        ).scalar_one()


async def wait_done(sessionmaker: Any, event_id: int) -> InboxEvent:
    return await wait_for_status(sessionmaker, event_id, EventStatus.DONE.value, timeout=DEADLINE)


def settle_of(event: InboxEvent) -> float:
    return (event.next_attempt_at - event.received_at).total_seconds()


async def post_order_create(
    client_factory: Any, database_url: str, settle: float
) -> tuple[Runs, httpx.AsyncClient, int]:
    """A service with this settle time and a `Runs` handler, and one GHL OrderCreate posted."""
    runs = Runs()
    client = await client_factory(
        make_settings(database_url, ghl_webhook_settle_seconds=settle), registry=runs.registry
    )
    body, headers = ghl_request(samples.ghl_event("OrderCreate"))
    return runs, client, await post_ghl(client, body, headers)


# --- a GHL webhook falls due after the settle time ------------------------------------------------


async def test_ghl_webhook_is_answered_at_once_and_handled_after_the_settle_time(
    database_url, engine, sessionmaker, client_factory
):
    settle = 2.0  # ample time to read the row back before it falls due, even on a busy machine
    runs, _, event_id = await post_order_create(client_factory, database_url, settle)

    stored = await row(sessionmaker, event_id)
    assert settle - 0.05 <= settle_of(stored) <= settle + 1
    assert stored.status == EventStatus.QUEUED.value and stored.attempts == 0  # not yet run
    assert runs.started == []

    handled = await wait_done(sessionmaker, event_id)
    assert handled.attempts == 1
    assert len(runs.started) == 1
    assert runs.started[0] >= handled.next_attempt_at  # not before it fell due
    assert handled.received_at == stored.received_at  # still the arrival time


async def test_the_in_process_worker_is_woken_when_the_ghl_webhook_falls_due(
    database_url, engine, sessionmaker, client_factory, monkeypatch
):
    """Polling is set to a minute and PostgreSQL's LISTEN is switched off, so only a wake-up can
    get the event handled within the deadline; and the webhook asks for it at the settle time.

    (Waking at once would also get it handled: the empty claim's idle sleep runs until the next
    due time. `test_worker_wake_after_wakes_later_not_now` checks that `after` is honoured.)"""
    settle = 0.3
    wakes: list[float] = []
    idle = asyncio.Event()
    original_wake, original_sleep = Worker.wake, Worker._sleep

    def wake(self: Worker, after: float = 0.0) -> None:
        wakes.append(after)
        original_wake(self, after)

    async def sleep(self: Worker, seconds: float) -> None:
        if seconds >= 30:  # the poll interval: nothing due, nothing running
            idle.set()
        await original_sleep(self, seconds)

    async def no_listen(self: Worker) -> None:
        await asyncio.Event().wait()  # until the worker stops and cancels it

    monkeypatch.setattr(Worker, "wake", wake)
    monkeypatch.setattr(Worker, "_sleep", sleep)
    monkeypatch.setattr(Worker, "_listen_loop", no_listen)
    runs = Runs()
    client = await client_factory(
        make_settings(database_url, worker_poll_seconds=60, ghl_webhook_settle_seconds=settle),
        registry=runs.registry,
    )
    await asyncio.wait_for(idle.wait(), DEADLINE)  # the first claim found nothing

    body, headers = ghl_request(samples.ghl_event("OrderCreate"))
    event_id = await post_ghl(client, body, headers)
    assert wakes == [settle]
    handled = await wait_done(sessionmaker, event_id)
    assert runs.started and runs.started[0] >= handled.next_attempt_at


async def test_worker_wake_after_wakes_later_not_now(database_url, engine, sessionmaker):
    worker = Worker(
        settings=make_settings(database_url), sessionmaker=sessionmaker, registry=HandlerRegistry()
    )
    worker.wake(0.3)
    assert not worker._wake.is_set()  # scheduled, not now
    await asyncio.wait_for(worker._wake.wait(), DEADLINE)
    worker._wake.clear()
    worker.wake()
    assert worker._wake.is_set()  # no delay: at once


# --- due at once: Wizehire, settle 0, replay ------------------------------------------------------


async def test_wizehire_webhook_is_due_at_once_whatever_the_ghl_settle_time(
    database_url, engine, sessionmaker, client_factory
):
    runs = Runs()
    client = await client_factory(
        make_settings(database_url, ghl_webhook_settle_seconds=1.0), registry=runs.registry
    )
    body, headers = wizehire_request(samples.wizehire_event("order.created"))
    response = await client.post(WIZEHIRE_URL, content=body, headers=headers)
    assert response.status_code == 202, response.text
    event_id = response.json()["id"]
    stored = await row(sessionmaker, event_id)
    assert stored.next_attempt_at == stored.received_at
    handled = await wait_done(sessionmaker, event_id)
    assert handled.next_attempt_at == handled.received_at
    assert len(runs.started) == 1


async def test_ghl_webhook_with_settle_zero_is_due_at_once(
    database_url, engine, sessionmaker, client_factory
):
    runs, _, event_id = await post_order_create(client_factory, database_url, 0)
    stored = await row(sessionmaker, event_id)
    assert stored.next_attempt_at == stored.received_at
    await wait_done(sessionmaker, event_id)
    assert len(runs.started) == 1


async def test_duplicate_ghl_delivery_does_not_move_the_due_time(
    database_url, engine, sessionmaker, client_factory
):
    # No worker: the row keeps the state the first delivery gave it.
    client = await client_factory(
        make_settings(database_url, worker="off", ghl_webhook_settle_seconds=5.0)
    )
    event = samples.ghl_event("OrderCreate")
    body, headers = ghl_request(event)
    event_id = await post_ghl(client, body, headers)
    first = await row(sessionmaker, event_id)
    assert 4.95 <= settle_of(first) <= 6

    again_body, again_headers = ghl_request(event)  # the same webhookId, signed anew
    response = await client.post(GHL_URL, content=again_body, headers=again_headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"id": event_id, "status": "duplicate"}
    after = await row(sessionmaker, event_id)
    assert after.next_attempt_at == first.next_attempt_at
    assert after.received_at == first.received_at
    assert after.status == EventStatus.QUEUED.value and after.attempts == 0


async def test_replayed_ghl_event_is_due_at_once_not_after_the_settle_time(
    database_url, engine, sessionmaker, client_factory
):
    settle = 2.0
    runs, client, event_id = await post_order_create(client_factory, database_url, settle)
    first = await wait_done(sessionmaker, event_id)

    before = utcnow()
    response = await client.post(f"/admin/events/{event_id}/replay")
    assert response.status_code == 202, response.text
    assert response.json() == {"id": event_id, "status": "queued"}
    replayed = await row(sessionmaker, event_id)  # the worker does not touch next_attempt_at
    assert before <= replayed.next_attempt_at <= utcnow() + timedelta(seconds=0.5)
    assert replayed.received_at == first.received_at

    async def ran_twice() -> bool:
        return len(runs.started) == 2

    await eventually(ran_twice)
    assert (await wait_done(sessionmaker, event_id)).attempts == 2


# --- the setting ----------------------------------------------------------------------------------


def test_settle_time_defaults_to_half_a_second(monkeypatch):
    monkeypatch.delenv("GHL_WEBHOOK_SETTLE_SECONDS", raising=False)
    assert Settings(_env_file=None).ghl_webhook_settle_seconds == 0.5  # type: ignore[call-arg]


@pytest.mark.parametrize(("value", "parsed"), [("0", 0.0), ("1.5", 1.5), ("60", 60.0)])
def test_settle_time_is_read_from_the_environment(monkeypatch, value, parsed):
    monkeypatch.setenv("GHL_WEBHOOK_SETTLE_SECONDS", value)
    assert Settings(_env_file=None).ghl_webhook_settle_seconds == parsed  # type: ignore[call-arg]


@pytest.mark.parametrize("value", ["-1", "61"])
def test_settle_time_outside_0_to_60_is_refused(monkeypatch, value):
    monkeypatch.setenv("GHL_WEBHOOK_SETTLE_SECONDS", value)
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert "ghl_webhook_settle_seconds" in str(caught.value)
