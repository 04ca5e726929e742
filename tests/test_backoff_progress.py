"""Backoff that notices progress: an attempt that committed a write retries after the base delay;
only attempts in a row that wrote nothing make the delay grow."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text, update

from tests.conftest import make_settings
from tests.support.waiting import eventually
from tests.support.worker_harness import SOURCE, TYPE, add_event, load, running_worker
from wizesync.db.base import utcnow
from wizesync.db.models import EventStatus, InboxEvent
from wizesync.inbox.context import EventContext
from wizesync.inbox.registry import HandlerRegistry

BASE = 100.0  # seconds: far beyond the test, so every retry stays waiting until we move it


def registry_for(handler) -> HandlerRegistry:  # type: ignore[no-untyped-def]
    registry = HandlerRegistry()
    registry.add(SOURCE, TYPE, handler)
    return registry


async def wait_attempts(sessionmaker, event_id: int, attempts: int) -> InboxEvent:
    async def check() -> InboxEvent | None:
        event = await load(sessionmaker, event_id)
        finished = [a for a in event.attempt_log if a.outcome is not None]
        ok = len(finished) == attempts and event.status != EventStatus.RUNNING
        return event if ok else None

    return await eventually(check, what=f"event {event_id} to finish attempt {attempts}")


async def due_now(sessionmaker, worker, event_id: int) -> None:
    async with sessionmaker.begin() as session:
        await session.execute(
            update(InboxEvent).where(InboxEvent.id == event_id).values(next_attempt_at=utcnow())
        )
    worker.wake()


def delay_of(event: InboxEvent) -> float:
    return (event.next_attempt_at - event.attempt_log[-1].finished_at).total_seconds()


async def test_attempts_that_commit_progress_retry_after_the_base_delay(
    database_url, sessionmaker
) -> None:
    """Attempts 1-2 write nothing (the delay doubles), attempt 3 commits a step (the delay falls
    back to the base), attempt 4 writes nothing again (it grows from the start)."""
    writes = {3}

    async def handler(ctx: EventContext) -> None:
        attempt = ctx.event.attempt
        if attempt in writes:
            async with ctx.unit_of_work() as session:
                await session.execute(
                    update(InboxEvent)
                    .where(InboxEvent.id == ctx.event.id)
                    .values(last_error=f"step of attempt {attempt}")
                )
        async with ctx.unit_of_work() as session:  # a read: no progress
            await session.execute(text("SELECT 1"))
        raise RuntimeError(f"GHL 502 on attempt {attempt}")

    settings = make_settings(
        database_url, worker_backoff_base_seconds=BASE, worker_backoff_max_seconds=10 * BASE
    )
    event_id = await add_event(sessionmaker)
    seen = []
    async with running_worker(settings, sessionmaker, registry_for(handler)) as worker:
        for attempt in range(1, 5):
            event = await wait_attempts(sessionmaker, event_id, attempt)
            seen.append((event.stalled_attempts, delay_of(event)))
            if attempt < 4:
                await due_now(sessionmaker, worker, event_id)

    (s1, d1), (s2, d2), (s3, d3), (s4, d4) = seen
    assert (s1, s2, s3, s4) == (1, 2, 0, 1)
    assert BASE / 2 - 1 <= d1 <= BASE + 1
    assert BASE - 1 <= d2 <= 2 * BASE + 1  # no progress twice: doubled
    assert BASE / 2 - 1 <= d3 <= BASE + 1  # progress: back to the base
    assert BASE / 2 - 1 <= d4 <= BASE + 1  # counting starts again


async def test_an_update_that_matches_nothing_is_no_progress(database_url, sessionmaker) -> None:
    async def handler(ctx: EventContext) -> None:
        async with ctx.unit_of_work() as session:
            await session.execute(
                update(InboxEvent).where(InboxEvent.id == -1).values(last_error="nothing")
            )
        raise RuntimeError("still failing")

    settings = make_settings(
        database_url, worker_backoff_base_seconds=BASE, worker_backoff_max_seconds=10 * BASE
    )
    event_id = await add_event(sessionmaker)
    async with running_worker(settings, sessionmaker, registry_for(handler)) as worker:
        await wait_attempts(sessionmaker, event_id, 1)
        await due_now(sessionmaker, worker, event_id)
        event = await wait_attempts(sessionmaker, event_id, 2)
    assert event.stalled_attempts == 2
    assert delay_of(event) >= BASE - 1


async def test_a_replay_starts_the_count_again(database_url, sessionmaker) -> None:
    from wizesync.db import inbox_repo

    event_id = await add_event(sessionmaker, status=EventStatus.DEAD)
    async with sessionmaker.begin() as session:
        await session.execute(
            update(InboxEvent).where(InboxEvent.id == event_id).values(stalled_attempts=7)
        )
    async with sessionmaker.begin() as session:
        row = await inbox_repo.lock_for_replay(session, event_id)
        assert row is not None
        await inbox_repo.requeue(session, row)
    assert (await load(sessionmaker, event_id)).stalled_attempts == 0
    assert timedelta(0) >= (await load(sessionmaker, event_id)).next_attempt_at - utcnow()
