"""Retention: done and ignored events purged by age (attempts with them), dead and quarantined
only by id, pending ones never; the CLI and the daily task beside the worker."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from tests.support.waiting import eventually
from tests.support.worker_harness import add_event
from wizesync.cli import app
from wizesync.cli.purge import parse_age
from wizesync.db import inbox_repo, retention_repo
from wizesync.db.base import utcnow
from wizesync.db.models import EventAttempt, EventStatus, InboxEvent
from wizesync.inbox.retention import purge_older_than, run_retention


async def add_aged(sessionmaker, status: EventStatus, days: float, key: str | None = None) -> int:
    """An event received (and, if finished, handled) `days` ago, with one attempt row."""
    event_id = await add_event(sessionmaker, status=status, key=key)
    then = utcnow() - timedelta(days=days)
    async with sessionmaker.begin() as session:
        handled = then if status not in (EventStatus.QUEUED, EventStatus.RETRY) else None
        await session.execute(
            update(InboxEvent)
            .where(InboxEvent.id == event_id)
            .values(received_at=then, handled_at=handled)
        )
        session.add(EventAttempt(event_id=event_id, attempt=1, worker_id="w", started_at=then))
    return event_id


async def remaining(sessionmaker) -> set[int]:
    async with sessionmaker() as session:
        return set((await session.execute(select(InboxEvent.id))).scalars())


async def attempt_rows(sessionmaker) -> int:
    async with sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(EventAttempt))).scalar()


async def test_purge_deletes_old_done_and_ignored_events_with_their_attempts(
    sessionmaker,
) -> None:
    old_done = [await add_aged(sessionmaker, EventStatus.DONE, 40) for _ in range(7)]
    old_ignored = await add_aged(sessionmaker, EventStatus.IGNORED, 31)
    keep = {
        await add_aged(sessionmaker, EventStatus.DONE, 5),
        await add_aged(sessionmaker, EventStatus.DEAD, 90),
        await add_aged(sessionmaker, EventStatus.QUARANTINED, 90),
        await add_aged(sessionmaker, EventStatus.QUEUED, 90, key="k"),
        await add_aged(sessionmaker, EventStatus.RETRY, 90, key="j"),
    }
    # Received long ago but replayed and handled yesterday: kept for its fresh outcome.
    replayed = await add_aged(sessionmaker, EventStatus.DONE, 60)
    async with sessionmaker.begin() as session:
        await session.execute(
            update(InboxEvent)
            .where(InboxEvent.id == replayed)
            .values(handled_at=utcnow() - timedelta(days=1))
        )
    keep.add(replayed)

    deleted = await purge_older_than(sessionmaker, timedelta(days=30), batch=3, pause=0)

    assert deleted == len(old_done) + 1
    assert await remaining(sessionmaker) == keep
    assert await attempt_rows(sessionmaker) == len(keep)
    assert old_ignored not in await remaining(sessionmaker)


async def test_dead_and_quarantined_events_are_purged_only_by_id(sessionmaker) -> None:
    dead = await add_aged(sessionmaker, EventStatus.DEAD, 1)
    quarantined = await add_aged(sessionmaker, EventStatus.QUARANTINED, 1)
    done = await add_aged(sessionmaker, EventStatus.DONE, 1)

    async with sessionmaker.begin() as session:
        assert await retention_repo.purge_named(
            session, status="dead", event_ids=[dead, quarantined, done]
        ) == [dead]
    async with sessionmaker.begin() as session:
        assert await retention_repo.purge_named(
            session, status="quarantined", event_ids=[quarantined]
        ) == [quarantined]
        with pytest.raises(ValueError):
            await retention_repo.purge_named(session, status="done", event_ids=[done])
    assert await remaining(sessionmaker) == {done}


async def test_purging_leaves_the_queue_working(sessionmaker) -> None:
    """Old finished events of a key go; the key's pending line is untouched and claimable."""
    await add_aged(sessionmaker, EventStatus.DONE, 40, key="order-1")
    waiting = await add_event(sessionmaker, key="order-1")
    await purge_older_than(sessionmaker, timedelta(days=30))
    async with sessionmaker.begin() as session:
        claimed = await inbox_repo.claim_due(session, worker_id="w", lease_seconds=60, limit=5)
    assert [event.id for event in claimed] == [waiting]


async def test_the_daily_task_purges_and_keeps_running(sessionmaker) -> None:
    old = await add_aged(sessionmaker, EventStatus.DONE, 10)
    recent = await add_aged(sessionmaker, EventStatus.DONE, 1)
    task = asyncio.create_task(run_retention(sessionmaker, 7, interval=3600, first_delay=0))
    try:

        async def purged() -> bool:
            return old not in await remaining(sessionmaker)

        await eventually(purged, what="the old event to be purged")
        assert await remaining(sessionmaker) == {recent}
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_ages_read_in_days_hours_or_minutes() -> None:
    assert parse_age("30d") == timedelta(days=30)
    assert parse_age(" 12h") == timedelta(hours=12)
    assert parse_age("90M") == timedelta(minutes=90)
    for bad in ("30", "0d", "-1d", "1w", "d"):
        with pytest.raises(ValueError):
            parse_age(bad)


@pytest.fixture
def cli_env(database_url, engine, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("WIZESYNC_ENV", "test")
    return CliRunner()


async def test_cli_purges_by_age_and_by_id(cli_env, sessionmaker) -> None:
    old = await add_aged(sessionmaker, EventStatus.DONE, 40)
    dead = await add_aged(sessionmaker, EventStatus.DEAD, 40)

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return cli_env.invoke(app, ["events", "purge", *args])

    result = await asyncio.to_thread(invoke, "--older-than", "30d")
    assert result.exit_code == 0, result.output
    assert "1 done or ignored events older than 30d purged" in result.output
    assert await remaining(sessionmaker) == {dead}

    result = await asyncio.to_thread(
        invoke, "--status", "dead", "--id", str(dead), "--id", "999999"
    )
    assert result.exit_code == 1
    assert f"event {dead} purged" in result.output
    assert await remaining(sessionmaker) == set()
    assert old not in await remaining(sessionmaker)

    for args in (
        (),
        ("--older-than", "30d", "--id", "1"),
        ("--older-than", "30d", "--status", "dead"),
        ("--id", "1"),
        ("--status", "done", "--id", "1"),
        ("--older-than", "soon"),
    ):
        assert (await asyncio.to_thread(invoke, *args)).exit_code == 2, args
