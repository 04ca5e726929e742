"""Two real `wizesync worker` processes share the schedule: each fire time gets one run, and a
fire time missed while every process was down gets one run when they start."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.processes import Proc, Spawner, free_port, service_env
from tests.support.waiting import eventually
from wizesync.db import reconcile_repo
from wizesync.db.reconcile_models import ReconciliationRun
from wizesync.reconcile.schedule import previous_fire
from wizesync_sandbox.defaults import DEFAULT_LOCATION_ID, DEFAULT_PRIVATE_TOKEN

pytestmark = pytest.mark.slow


@pytest.fixture
def spawner(tmp_path: Path) -> Iterator[Spawner]:
    spawner = Spawner(tmp_path)
    yield spawner
    spawner.close()


async def _sandbox(spawner: Spawner, database_url: str) -> str:
    port = free_port()
    proc = Proc(
        "sandbox",
        ["sandbox", "--port", str(port), "--service-url", "", "--webhooks", "off"],
        service_env(database_url),
        spawner.log_dir,
    )
    spawner.procs.append(proc)
    base = f"http://127.0.0.1:{port}"

    async def up() -> bool:
        if not proc.alive():
            raise AssertionError(f"sandbox exited:\n{proc.tail()}")
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (
                    await client.get(
                        base + "/wizehire/v1/orders", headers={"Authorization": "Bearer k"}
                    )
                ).is_success
        except httpx.HTTPError:
            return False

    await eventually(up, timeout=60, what="the sandbox to answer")
    return base


def _worker_env(base: str, cron: str) -> dict[str, str]:
    return {
        "RECONCILE_CRON": cron,
        "WIZEHIRE_API_URL": f"{base}/wizehire",
        "WIZEHIRE_API_KEY": "k",
        "GHL_API_URL": f"{base}/ghl",
        "GHL_PRIVATE_TOKEN": DEFAULT_PRIVATE_TOKEN,
        "GHL_LOCATION_ID": DEFAULT_LOCATION_ID,
        "WORKER_HANDLER_MODULES": "",
    }


async def _runs(sessionmaker: async_sessionmaker[AsyncSession]) -> list[ReconciliationRun]:
    async with sessionmaker() as session:
        rows = await session.execute(select(ReconciliationRun).order_by(ReconciliationRun.id))
        return list(rows.scalars())


async def test_two_workers_one_run_per_fire_time(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession], spawner: Spawner
) -> None:
    base = await _sandbox(spawner, database_url)
    workers = [spawner.worker(database_url, **_worker_env(base, "* * * * * */3")) for _ in range(2)]
    for worker in workers:
        await worker.wait_for_output("worker started")

    async def three_fired() -> bool:
        runs = await _runs(sessionmaker)
        return len({r.fire_time for r in runs if r.status == "done"}) >= 3

    await eventually(
        three_fired, timeout=90, interval=0.5, what=f"three scheduled runs\n{spawner.outputs()}"
    )
    for worker in workers:
        worker.stop()
    runs = await _runs(sessionmaker)
    per_fire = Counter(r.fire_time for r in runs)
    assert all(n == 1 for n in per_fire.values()), per_fire
    assert all(r.trigger == "scheduled" and r.status in ("done", "running") for r in runs)
    assert all(r.fire_time is not None and r.fire_time.second % 3 == 0 for r in runs)


async def test_a_fire_time_missed_while_down_runs_once_when_two_workers_start(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession], spawner: Spawner
) -> None:
    cron = "0 2 * * *"
    missed = previous_fire(cron, datetime.now(UTC))
    assert missed is not None
    before = missed - timedelta(days=2)
    async with sessionmaker.begin() as session:
        run_id = await reconcile_repo.create_run(
            session,
            trigger="scheduled",
            since=before - timedelta(days=7),
            until=before,
            heal=True,
            owner="gone",
            lease_seconds=60,
            fire_time=before,
        )
        assert run_id is not None
        await reconcile_repo.finish_run(session, run_id, owner="gone", status="done")
    base = await _sandbox(spawner, database_url)
    workers = [spawner.worker(database_url, **_worker_env(base, cron)) for _ in range(2)]

    async def made_up() -> list[ReconciliationRun]:
        return [
            r for r in await _runs(sessionmaker) if r.fire_time == missed and r.status == "done"
        ]

    [run] = await eventually(
        made_up, timeout=90, interval=0.5, what=f"the missed run\n{spawner.outputs()}"
    )
    await asyncio.sleep(3)  # both schedulers have ticked again by now
    for worker in workers:
        worker.stop()
    fires = sorted(r.fire_time for r in await _runs(sessionmaker))
    assert fires == [before, missed]
    assert run.until == missed
