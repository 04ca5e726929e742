"""Runs: one per fire time across schedulers, a missed fire time made up at start, a crashed run
resumed (or failed), never left running; the Slack summary of a scheduled run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.reconcile.conftest import ReconKit
from wizesync.config import check_cron
from wizesync.db import reconcile_repo
from wizesync.db.models import InboxEvent
from wizesync.db.reconcile_models import ReconciliationRun
from wizesync.reconcile.heal import HEAL_TYPE
from wizesync.reconcile.runs import MAX_RESUMES
from wizesync.reconcile.schedule import Scheduler, previous_fire

CRON = "0 2 * * *"
NOW = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
FIRE = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs, no `except Exception` sees it."""


async def _runs(recon: ReconKit) -> list[ReconciliationRun]:
    async with recon.flow.sessionmaker() as session:
        rows = await session.execute(select(ReconciliationRun).order_by(ReconciliationRun.id))
        return list(rows.scalars())


async def _history(recon: ReconKit, fire_time: datetime) -> None:
    """A scheduled run of an earlier fire time: the schedule has fired before."""
    async with recon.flow.sessionmaker.begin() as session:
        run_id = await reconcile_repo.create_run(
            session,
            trigger="scheduled",
            since=fire_time - timedelta(days=7),
            until=fire_time,
            heal=True,
            owner="old",
            lease_seconds=60,
            fire_time=fire_time,
        )
        assert run_id is not None
        await reconcile_repo.finish_run(session, run_id, owner="old", status="done")


def test_cron_parsing() -> None:
    assert check_cron(" 0  2 * * * ") == CRON
    assert check_cron("OFF") == "off"
    with pytest.raises(ValueError, match="not a cron expression"):
        check_cron("every night")
    assert previous_fire(CRON, NOW) == FIRE
    assert previous_fire(CRON, FIRE) == FIRE
    assert previous_fire("off", NOW) is None


async def test_two_schedulers_one_fire_time_one_run(recon: ReconKit) -> None:
    await _history(recon, FIRE - timedelta(days=1))
    schedulers = [Scheduler(recon.reconciler(), CRON, clock=lambda: NOW) for _ in range(2)]
    ran = await asyncio.gather(*(s.tick() for s in schedulers))
    assert sorted(len(r) for r in ran) == [0, 1]
    runs = [r for r in await _runs(recon) if r.fire_time == FIRE]
    assert len(runs) == 1 and runs[0].status == "done" and runs[0].trigger == "scheduled"
    assert runs[0].until == FIRE and runs[0].since == FIRE - timedelta(days=7)
    # The next ticks of the same fire time do nothing.
    assert await schedulers[0].tick() == [] and await schedulers[1].tick() == []
    assert len(await _runs(recon)) == 2


async def test_a_missed_fire_time_runs_once_at_start(recon: ReconKit) -> None:
    await _history(recon, FIRE - timedelta(days=3))  # the service was down for two nights
    scheduler = Scheduler(recon.reconciler(), CRON, clock=lambda: NOW)
    assert len(await scheduler.tick()) == 1
    assert await scheduler.tick() == []
    fires = sorted(r.fire_time for r in await _runs(recon) if r.fire_time)
    assert fires == [FIRE - timedelta(days=3), FIRE]  # only the latest is made up


async def test_a_fresh_deployment_waits_for_its_first_fire_time(recon: ReconKit) -> None:
    now = [NOW]
    scheduler = Scheduler(recon.reconciler(), CRON, clock=lambda: now[0])
    assert await scheduler.tick() == []
    assert await _runs(recon) == []
    now[0] = FIRE + timedelta(days=1, seconds=1)
    assert len(await scheduler.tick()) == 1
    assert await scheduler.tick() == []
    assert "off" == Scheduler(recon.reconciler(), "off").cron
    assert await Scheduler(recon.reconciler(), "off").tick() == []


async def test_a_crashed_run_is_resumed_by_another_process(recon: ReconKit) -> None:
    orders = [recon.new_order() for _ in range(5)]
    for order in orders:
        recon.seed_wizehire(order)
    stray = recon.checkout()
    pages = []

    def crash_after_two_pages(phase: str, done: int, total: int | None) -> None:
        if phase == "wizehire":
            pages.append(done)
            if len(pages) == 2:
                raise Crash

    dying = recon.reconciler(
        lease_seconds=0.5, progress=crash_after_two_pages, wizehire_page_size=2
    )
    run_id = await dying.start(trigger="manual", window=recon.window(), heal=True)
    with pytest.raises(Crash):
        await dying.execute(run_id)
    [run] = await _runs(recon)
    assert run.status == "running" and run.state["phase"] == "ghl_transactions"
    assert len(await recon.items(run_id)) == 4  # two pages of two committed

    other = recon.reconciler(wizehire_page_size=2)
    assert await other.resume_abandoned() == []  # the lease is still running
    await asyncio.sleep(0.6)
    assert await other.resume_abandoned() == [run_id]
    [run] = await _runs(recon)
    assert run.status == "done" and run.state["resumes"] == 1
    items = await recon.by_order(run_id)
    assert set(items) == {o["id"] for o in orders} | {f"ghl:{stray['_id']}"}
    assert run.counts["missing_in_ghl"] == 5 and run.counts["missing_in_wizehire"] == 1
    async with recon.flow.sessionmaker() as session:
        heals = (
            (await session.execute(select(InboxEvent.event_id).where(InboxEvent.type == HEAL_TYPE)))
            .scalars()
            .all()
        )
    assert len(heals) == 5 == len(set(heals))


async def test_a_run_whose_process_keeps_dying_is_failed(recon: ReconKit) -> None:
    rec = recon.reconciler(lease_seconds=0.2)
    run_id = await rec.start(trigger="manual", window=recon.window(), heal=False)
    async with recon.flow.sessionmaker.begin() as session:
        await reconcile_repo.save_progress(
            session,
            run_id,
            owner=rec.owner,
            state={"resumes": MAX_RESUMES},
            counts={},
            lease_seconds=-1,
        )
    assert await recon.reconciler().resume_abandoned() == [run_id]
    [run] = await _runs(recon)
    assert run.status == "failed" and "stopped" in (run.error or "")
    assert run.finished_at is not None and run.lease_owner is None


async def test_a_failing_run_is_marked_failed_with_the_reason(recon: ReconKit) -> None:
    recon.flow.fault(path="/wizehire/v1/orders", method="GET", status=400)
    run_id = await recon.reconciler().start(trigger="manual", window=recon.window(), heal=False)
    run = await recon.reconciler().execute(run_id)
    assert run is None  # another owner's run: not executed
    rec = recon.reconciler()
    run_id = await rec.start(trigger="manual", window=recon.window(), heal=False)
    run = await rec.execute(run_id)
    assert run is not None and run.status == "failed" and "Wizehire" in (run.error or "")


async def test_a_scheduled_run_sends_one_slack_summary(recon: ReconKit) -> None:
    synced = await recon.synced()
    never_sent = recon.new_order()
    recon.seed_wizehire(never_sent)
    recon.flow.settings = recon.flow.settings.model_copy(
        update={"public_url": "https://wizesync.example.com/"}
    )
    now = datetime.now(UTC)
    fire = previous_fire("* * * * *", now)
    assert fire is not None
    await _history(recon, fire - timedelta(minutes=1))
    scheduler = Scheduler(recon.reconciler(), "* * * * *", clock=lambda: now)
    [run_id] = await scheduler.tick()
    await recon.flow.send_notices()
    [message] = recon.flow.slack.matching(f"Reconciliation {run_id}")
    assert "1 to look at" in message and "missing_in_ghl 1" in message and "matched 1" in message
    assert f"https://wizesync.example.com/reports/reconciliation/{run_id}" in message
    assert never_sent["id"] in message and synced["id"] not in message
    # A manual run says nothing.
    await recon.run()
    await recon.flow.send_notices()
    assert len(recon.flow.slack.matching("Reconciliation")) == 1
