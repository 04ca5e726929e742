"""Humans hear about what needs them: a dead event, or a wait only a human can end.

The worker queues the notice (an `internal`/`slack.notify` event) and the same worker posts it.
"""

from __future__ import annotations

from tests.conftest import make_settings
from tests.support.slack import ScriptedSlack, notice_registry, notice_rows, services_for
from tests.support.waiting import eventually, wait_for_status
from tests.support.worker_harness import add_event, running_worker
from wizesync.db.base import utcnow
from wizesync.db.models import EventStatus
from wizesync.inbox.context import PermanentFailure, RetryLater
from wizesync.notify.outbox import NOTIFY_TYPE


async def test_a_dead_event_is_queued_for_slack_with_how_to_replay_it(database_url, sessionmaker):
    registry = notice_registry()

    @registry.on("wizehire", "order.created")
    async def handle(ctx):  # type: ignore[no-untyped-def]
        raise PermanentFailure("unmapped SKU JOB-X: add it to the mapping file")

    slack = ScriptedSlack()
    event_id = await add_event(sessionmaker, key="k")
    async with running_worker(make_settings(database_url), sessionmaker, registry) as worker:
        worker.services = services_for(slack)
        await wait_for_status(sessionmaker, event_id, EventStatus.DEAD)
        (row,) = await eventually(lambda: notice_rows(sessionmaker), what="a queued notice")
        await wait_for_status(sessionmaker, row.id, EventStatus.DONE)

    assert (row.type, row.ordering_key) == (NOTIFY_TYPE, "slack")
    assert row.event_id.startswith(f"slack:dead:{event_id}:")
    assert f"wizesync events replay {event_id}" in " ".join(row.payload["lines"])
    (message,) = slack.accepted
    assert f"Event {event_id}" in message and "dead" in message
    assert "unmapped SKU JOB-X" in message
    assert f"wizesync events replay {event_id}" in message


async def test_a_wait_that_needs_a_human_alerts_once_an_hour_and_a_plain_retry_does_not(
    database_url, sessionmaker
):
    registry = notice_registry()
    calls = {"n": 0}

    @registry.on("wizehire", "order.created")
    async def handle(ctx):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RetryLater("GHL busy", 0.05)
        if calls["n"] <= 3:
            raise RetryLater(
                "install needs re-authorisation",
                0.05,
                alert="A GHL installation needs re-authorisation",
            )

    slack = ScriptedSlack()
    started_hour = f"{utcnow():%Y-%m-%dT%H}"
    event_id = await add_event(sessionmaker, key="k2")
    async with running_worker(make_settings(database_url), sessionmaker, registry) as worker:
        worker.services = services_for(slack)
        await wait_for_status(sessionmaker, event_id, EventStatus.DONE)
        (first, *_) = await eventually(lambda: notice_rows(sessionmaker), what="a queued alert")
        await wait_for_status(sessionmaker, first.id, EventStatus.DONE)
    rows = await notice_rows(sessionmaker)  # stop() waited for every attempt and its notice

    # Two alerting attempts, one notice (the same hour); the plain retry said nothing.
    hours = 1 if f"{utcnow():%Y-%m-%dT%H}" == started_hour else 2  # a run across o'clock
    assert 1 <= len(rows) <= hours
    assert all(
        r.event_id.startswith("slack:alert:A GHL installation needs re-authorisation:")
        for r in rows
    )
    assert slack.accepted and all(
        "A GHL installation needs re-authorisation" in m for m in slack.accepted
    )


async def test_without_a_slack_webhook_a_dead_event_queues_nothing(database_url, sessionmaker):
    registry = notice_registry()

    @registry.on("wizehire", "order.created")
    async def handle(ctx):  # type: ignore[no-untyped-def]
        raise PermanentFailure("nope")

    slack = ScriptedSlack()
    event_id = await add_event(sessionmaker, key="k3")
    async with running_worker(make_settings(database_url), sessionmaker, registry) as worker:
        worker.services = services_for(slack, url=None)
        await wait_for_status(sessionmaker, event_id, EventStatus.DEAD)
    # stop() waited for the attempt, its notice included.
    assert await notice_rows(sessionmaker) == []
    assert slack.accepted == []
