"""Humans hear about what needs them: a dead event, or a wait only a human can end."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.conftest import make_settings
from tests.support.worker_harness import add_event, running_worker, wait_for_status, wait_until
from wizesync.db.models import EventStatus
from wizesync.inbox.context import PermanentFailure, RetryLater
from wizesync.inbox.registry import HandlerRegistry
from wizesync.inbox.worker import Worker
from wizesync.notify.slack import Notice


@dataclass
class RecordingSlack:
    notices: list[Notice] = field(default_factory=list)

    async def notify(self, notice: Notice) -> bool:
        self.notices.append(notice)
        return True


@dataclass
class FakeServices:
    slack: RecordingSlack = field(default_factory=RecordingSlack)


async def test_a_dead_event_is_told_to_slack_with_how_to_replay_it(database_url, sessionmaker):
    registry = HandlerRegistry()

    @registry.on("wizehire", "order.created")
    async def handle(ctx):  # type: ignore[no-untyped-def]
        raise PermanentFailure("unmapped SKU JOB-X: add it to the mapping file")

    services = FakeServices()
    event_id = await add_event(sessionmaker, key="k")
    worker = Worker(settings=make_settings(database_url), sessionmaker=sessionmaker,
                    registry=registry, services=services)
    worker.start()
    try:
        await wait_for_status(sessionmaker, event_id, EventStatus.DEAD)
        await wait_until(lambda: _async(services.slack.notices), what="a Slack notice")
    finally:
        await worker.stop()
    (notice,) = services.slack.notices
    assert f"Event {event_id}" in notice.title and "dead" in notice.title
    assert "unmapped SKU JOB-X" in notice.text()
    assert f"wizesync events replay {event_id}" in notice.text()


async def test_a_wait_that_needs_a_human_alerts_once_and_a_plain_retry_does_not(
    database_url, sessionmaker
):
    registry = HandlerRegistry()
    calls = {"n": 0}

    @registry.on("wizehire", "order.created")
    async def handle(ctx):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RetryLater("GHL busy", 0.05)
        if calls["n"] <= 3:
            raise RetryLater("install needs re-authorisation", 0.05,
                             alert="A GHL installation needs re-authorisation")

    services = FakeServices()
    event_id = await add_event(sessionmaker, key="k2")
    async with running_worker(make_settings(database_url), sessionmaker, registry) as worker:
        worker.services = services
        await wait_for_status(sessionmaker, event_id, EventStatus.DONE)
    titles = [n.title for n in services.slack.notices]
    # Two alerting attempts, one Slack call each; the recorder keeps both (the real notifier
    # de-duplicates by key), and the plain retry said nothing.
    assert titles == ["A GHL installation needs re-authorisation"] * 2
    assert {n.key for n in services.slack.notices} == {
        "alert:A GHL installation needs re-authorisation"}


async def _async(value):  # type: ignore[no-untyped-def]
    return value
