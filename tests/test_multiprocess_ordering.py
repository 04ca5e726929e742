"""Two worker processes on PostgreSQL share one queue: per ordering key, one event at a time and in
arrival order; every event handled exactly once.

Events of five keys arrive interleaved while both workers run. The handler records start and end
with `time.time_ns()` (one machine, one clock), so the runs can be laid out on a timeline.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.processes import Spawner
from tests.support.scripted import Run, direct_event, load_events, queue_events, read_runs, script
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

KEYS = [f"order-{n}" for n in range(5)]
EVENTS = 120


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """PostgreSQL only: SKIP LOCKED claims between processes are what is under test."""
    return postgres_url


@pytest.fixture
def spawner(tmp_path: Path) -> Iterator[Spawner]:
    spawner = Spawner(tmp_path)
    yield spawner
    spawner.close()


async def test_two_workers_run_each_key_one_at_a_time_in_arrival_order_exactly_once(
    database_url: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    spawner: Spawner,
    tmp_path: Path,
) -> None:
    runs_log = tmp_path / "runs.log"
    # A long lease: this test is about ordering, not about a slow machine's lease expiring.
    workers = [spawner.worker(database_url, WORKER_LEASE_SECONDS="30") for _ in range(2)]
    for worker in workers:
        await worker.wait_for_output("worker started")

    rng = random.Random(20261127)
    arrival: list[int] = []
    for seq in range(EVENTS):
        key = rng.choice(KEYS)
        steps = script(runs_log, sleep=rng.uniform(0.01, 0.06), seq=seq)
        if seq % 3 == 0:
            # Arrivals spread out, so claims race with inserts.
            await asyncio.sleep(rng.uniform(0, 0.05))
        arrival += await queue_events(sessionmaker, direct_event(key, steps))

    async def all_done() -> bool:
        events = await load_events(sessionmaker)
        return len(events) == EVENTS and all(e.status == "done" for e in events)

    await eventually(
        all_done,
        timeout=180,
        interval=0.5,
        what=f"all {EVENTS} events to be done\n{spawner.outputs()}",
    )

    events = await load_events(sessionmaker)
    assert [e.attempts for e in events] == [1] * EVENTS
    runs = read_runs(runs_log)
    starts = [r for r in runs if r.phase == "start"]
    ends = {r.inbox_id: r for r in runs if r.phase == "end"}
    # Exactly once: one start and one end per event, nothing else.
    assert sorted(r.inbox_id for r in starts) == sorted(arrival)
    assert sorted(ends) == sorted(arrival)
    assert len(runs) == 2 * EVENTS

    by_key: dict[str | None, list[Run]] = defaultdict(list)
    for start in sorted(starts, key=lambda r: r.t):
        by_key[start.key].append(start)
    assert sorted(by_key) == sorted(f"test:{k}" for k in KEYS)
    for key, key_starts in by_key.items():
        # Arrival order: started in the order of their inbox ids.
        assert [r.inbox_id for r in key_starts] == sorted(r.inbox_id for r in key_starts), key
        # One at a time: each run ended before the next of its key started.
        for before, after in itertools.pairwise(key_starts):
            assert ends[before.inbox_id].t <= after.t, (
                f"{key}: event {after.inbox_id} started while {before.inbox_id} ran"
            )
    # Both processes took part (otherwise this says nothing about two workers).
    assert {r.pid for r in starts} == {w.pid for w in workers}
