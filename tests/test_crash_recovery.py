"""Worker processes that die (SIGKILL) or are asked to stop (SIGTERM) mid-handler lose nothing.

Real `python -m wizesync worker` processes against the session's SQLite file and PostgreSQL
database; the handler (tests.support.handlers) does what each event's script says and leaves
start/end records on disk.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.processes import Spawner
from tests.support.scripted import (
    direct_event,
    load_event,
    load_events,
    queue_events,
    ran_by,
    read_runs,
    script,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

Sessionmaker = async_sessionmaker[AsyncSession]


@pytest.fixture
def spawner(tmp_path: Path) -> Iterator[Spawner]:
    spawner = Spawner(tmp_path)
    yield spawner
    spawner.close()


def started(runs: Path, count: int = 1):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return sum(1 for run in read_runs(runs) if run.phase == "start") >= count

    return check


def all_done(sessionmaker: Sessionmaker, ids: list[int]):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        events = {e.id: e for e in await load_events(sessionmaker)}
        return all(events[i].status == "done" for i in ids)

    return check


async def test_worker_killed_mid_handler_is_rerun_by_another_worker_after_its_lease(
    database_url: str, sessionmaker: Sessionmaker, spawner: Spawner, tmp_path: Path
) -> None:
    runs = tmp_path / "runs.log"
    first = spawner.worker(database_url)
    await first.wait_for_output("worker started")
    [inbox_id] = await queue_events(
        sessionmaker, direct_event("order-1", script(runs, hang_on_attempts=(1,)))
    )
    await eventually(started(runs), what="attempt 1 to start")

    first.send(signal.SIGKILL)
    assert await first.wait_exit() == -signal.SIGKILL
    event = await load_event(sessionmaker, inbox_id)
    assert (event.status, event.attempts) == ("running", 1)  # the dead worker's lease

    second = spawner.worker(database_url)
    await eventually(
        all_done(sessionmaker, [inbox_id]),
        timeout=90,
        what=f"the event to be done\n{spawner.outputs()}",
    )

    event = await load_event(sessionmaker, inbox_id)
    assert event.attempts == 2
    assert event.lease_owner is None and event.handled_at is not None
    one, two = event.attempt_log
    assert (one.attempt, one.outcome) == (1, "lost")
    assert ran_by(one.worker_id, first.pid)
    assert (two.attempt, two.outcome) == (2, "done")
    assert ran_by(two.worker_id, second.pid)
    assert [(r.phase, r.attempt, r.pid) for r in read_runs(runs)] == [
        ("start", 1, first.pid),
        ("start", 2, second.pid),
        ("end", 2, second.pid),
    ]


async def test_worker_lease_is_held_by_heartbeat_while_its_process_lives(
    database_url: str, sessionmaker: Sessionmaker, spawner: Spawner, tmp_path: Path
) -> None:
    """A long handler in a live worker is not stolen by another worker once the lease time has
    passed several times over: the heartbeat keeps extending it. Killed, it is taken over."""
    runs = tmp_path / "runs.log"
    lease = 4  # heartbeat every lease/3 s: a margin of two beats on a busy machine
    workers = [spawner.worker(database_url, WORKER_LEASE_SECONDS=str(lease)) for _ in range(2)]
    for worker in workers:
        await worker.wait_for_output("worker started")
    [inbox_id] = await queue_events(
        sessionmaker, direct_event("order-1", script(runs, hang_on_attempts=(1,)))
    )
    await eventually(started(runs), what="attempt 1 to start")
    [holder] = [w for w in workers if w.pid == read_runs(runs)[0].pid]
    [other] = [w for w in workers if w is not holder]

    # Three lease lengths: without the heartbeat, the other worker would have taken it over.
    await asyncio.sleep(3 * lease)
    event = await load_event(sessionmaker, inbox_id)
    assert (event.status, event.attempts) == ("running", 1)
    assert ran_by(event.lease_owner, holder.pid)
    assert [r.attempt for r in read_runs(runs)] == [1]

    holder.send(signal.SIGKILL)
    await eventually(
        all_done(sessionmaker, [inbox_id]),
        timeout=90,
        what=f"the event to be done\n{spawner.outputs()}",
    )
    event = await load_event(sessionmaker, inbox_id)
    assert [(a.outcome, ran_by(a.worker_id, other.pid)) for a in event.attempt_log] == [
        ("lost", False),
        ("done", True),
    ]


async def test_sigterm_stops_claiming_and_finishes_in_flight_work_within_grace(
    database_url: str, sessionmaker: Sessionmaker, spawner: Spawner, tmp_path: Path
) -> None:
    runs = tmp_path / "runs.log"
    ids = await queue_events(
        sessionmaker,
        *(direct_event(f"order-{n}", script(runs, sleep=5.0, seq=n)) for n in range(4)),
    )
    worker = spawner.worker(database_url, grace=60, WORKER_CONCURRENCY="2")
    await eventually(started(runs, 2), what="two attempts to start")

    worker.send(signal.SIGTERM)
    assert await worker.wait_exit(timeout=90) == 0, worker.tail()

    first_two = {r.inbox_id for r in read_runs(runs)}
    assert len(first_two) == 2
    assert sorted((r.phase, r.attempt) for r in read_runs(runs)) == [
        ("end", 1),
        ("end", 1),
        ("start", 1),
        ("start", 1),
    ]
    events = {e.id: e for e in await load_events(sessionmaker)}
    assert {i: events[i].status for i in first_two} == dict.fromkeys(first_two, "done")
    # It stopped claiming: the other two were never touched.
    assert {(events[i].status, events[i].attempts) for i in set(ids) - first_two} == {("queued", 0)}
    assert "running" not in {e.status for e in events.values()}

    spawner.worker(database_url)
    await eventually(
        all_done(sessionmaker, ids), timeout=90, what=f"every event to be done\n{spawner.outputs()}"
    )
    assert sorted(r.inbox_id for r in read_runs(runs) if r.phase == "end") == sorted(ids)


async def test_sigterm_hands_back_work_that_outlives_the_grace_period(
    database_url: str, sessionmaker: Sessionmaker, spawner: Spawner, tmp_path: Path
) -> None:
    runs = tmp_path / "runs.log"
    ids = await queue_events(
        sessionmaker,
        *(direct_event(f"order-{n}", script(runs, hang_on_attempts=(1,), seq=n)) for n in range(2)),
    )
    worker = spawner.worker(database_url, grace=1)
    await eventually(started(runs, 2), what="both attempts to start")

    worker.send(signal.SIGTERM)
    assert await worker.wait_exit(timeout=90) == 0, worker.tail()

    assert sorted(r.phase for r in read_runs(runs)) == ["cancelled", "cancelled", "start", "start"]
    for inbox_id in ids:
        event = await load_event(sessionmaker, inbox_id)
        # Handed back, due at once, not waiting for a lease to expire.
        assert (event.status, event.attempts, event.lease_owner) == ("retry", 1, None)
        assert [a.outcome for a in event.attempt_log] == ["released"]

    replacement = spawner.worker(database_url)
    await eventually(
        all_done(sessionmaker, ids), timeout=90, what=f"every event to be done\n{spawner.outputs()}"
    )
    for inbox_id in ids:
        event = await load_event(sessionmaker, inbox_id)
        assert [a.outcome for a in event.attempt_log] == ["released", "done"]
        assert ran_by(event.attempt_log[1].worker_id, replacement.pid)
    ends = [r for r in read_runs(runs) if r.phase == "end"]
    assert sorted((r.inbox_id, r.attempt) for r in ends) == [(i, 2) for i in sorted(ids)]
