"""A replayed event gets the whole attempt budget again, while attempt numbers keep counting."""

from __future__ import annotations

from tests.conftest import make_settings
from tests.support.waiting import wait_for_status
from tests.support.worker_harness import add_event, load, running_worker
from wizesync.db.models import EventStatus
from wizesync.inbox.registry import HandlerRegistry
from wizesync.inbox.replay import replay


async def test_replayed_dead_event_gets_a_full_attempt_budget_again(database_url, sessionmaker):
    settings = make_settings(database_url, worker_max_attempts=3)
    registry = HandlerRegistry()
    fail_until = {"attempt": 4}  # attempts 1-3 fail (dead), after replay 4 fails, 5 succeeds

    @registry.on("wizehire", "order.created")
    async def handle(ctx):  # type: ignore[no-untyped-def]
        if ctx.event.attempt <= fail_until["attempt"]:
            raise RuntimeError(f"transient failure on attempt {ctx.event.attempt}")

    event_id = await add_event(sessionmaker, key="budget")
    async with running_worker(settings, sessionmaker, registry):
        dead = await wait_for_status(sessionmaker, event_id, EventStatus.DEAD)
        assert dead.attempts == 3
        assert await replay(sessionmaker, event_id) == EventStatus.QUEUED
        done = await wait_for_status(sessionmaker, event_id, EventStatus.DONE)
    assert done.attempts == 5
    event = await load(sessionmaker, event_id)
    assert [a.outcome for a in event.attempt_log] == ["retry", "retry", "dead", "retry", "done"]
