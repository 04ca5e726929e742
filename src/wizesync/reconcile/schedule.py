"""`RECONCILE_CRON`: when scheduled runs fire, and the loop that fires them beside the worker.

Cron parsing is croniter's (the pallets-eco maintained library): day-of-week/day-of-month
interplay, ranges, steps and names are easy to get subtly wrong by hand, and its `get_prev` gives
the "last fire time before now" that making up a missed run needs. Times are UTC.

Exactly once per fire time, whatever the number of replicas: a scheduled run is created by one
INSERT guarded by the unique `fire_time` (see `db/reconcile_repo.py`); the replica whose insert
lands runs it, the others find the row and do nothing.

A missed fire time (every process down at 02:00) runs at the next start: each tick looks at the
latest fire time at or before now and creates its run if none exists. Only the latest is made up
(yesterday's report supersedes the one before), and a deployment whose schedule never fired (no
scheduled run in the database) waits for its first fire time instead of reconciling on its very
first start.

A run whose process died (its lease expired) is resumed by the next tick of any process, from the
cursors it stored (`runs.Reconciler.resume_abandoned`).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from croniter import croniter

from wizesync.config import CRON_OFF as OFF
from wizesync.config import check_cron
from wizesync.db.base import utcnow

if TYPE_CHECKING:
    from wizesync.reconcile.runs import Reconciler

log = logging.getLogger(__name__)

# Longest sleep between two looks at the schedule and at abandoned runs.
TICK_SECONDS = 30.0


def previous_fire(cron: str, now: datetime) -> datetime | None:
    """The latest fire time at or before `now` (UTC); None when the schedule is off."""
    if cron == OFF:
        return None
    moment = now.astimezone(UTC)
    # croniter's get_prev is strict: a fire time exactly at `now` counts as already come.
    fire = croniter(cron, moment + timedelta(microseconds=1)).get_prev(datetime)
    return fire.astimezone(UTC)


def next_fire(cron: str, now: datetime) -> datetime | None:
    if cron == OFF:
        return None
    return croniter(cron, now.astimezone(UTC)).get_next(datetime).astimezone(UTC)


class Scheduler:
    """A worker companion: fires scheduled runs and resumes abandoned ones."""

    def __init__(
        self,
        reconciler: Reconciler,
        cron: str,
        *,
        tick_seconds: float = TICK_SECONDS,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.reconciler = reconciler
        self.cron = check_cron(cron)
        self.tick_seconds = tick_seconds
        self._clock = clock
        self._sleep = sleep
        self.started_at = clock()

    async def run(self) -> None:
        """Tick until cancelled (the Worker cancels its companions on stop)."""
        log.info("reconciliation scheduler started", extra={"cron": self.cron})
        # A moment after start: the worker's own start-up (and its tests) come first.
        await self._sleep(min(self.tick_seconds, 2.0) + random.uniform(0.0, 0.5))  # noqa: S311
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database away, a bug: log, look again next tick
                log.warning("reconciliation scheduler tick failed", exc_info=exc)
            await self._sleep(self._wait())

    async def tick(self) -> list[int]:
        """Resume abandoned runs, then fire the due fire time if nobody has; the ids run."""
        ran = await self.reconciler.resume_abandoned()
        fire = self.due_fire_time()
        if fire is None:
            return ran
        if not await self._should_fire(fire):
            return ran
        run_id = await self.reconciler.start_scheduled(fire)
        if run_id is not None:
            await self.reconciler.execute(run_id, announce=True)
            ran.append(run_id)
        return ran

    def due_fire_time(self) -> datetime | None:
        return previous_fire(self.cron, self._clock())

    async def _should_fire(self, fire: datetime) -> bool:
        latest = await self.reconciler.latest_fire_time()
        if latest is not None and latest >= fire:
            return False  # this fire time (or a later one) has its run
        # Never fired before: only a fire time that came while this process was running.
        return latest is not None or fire >= self.started_at

    def _wait(self) -> float:
        upcoming = next_fire(self.cron, self._clock())
        wait = self.tick_seconds
        if upcoming is not None:
            wait = min(wait, max(0.0, (upcoming - self._clock()).total_seconds()))
        # A little jitter so replicas do not all hit the database in the same millisecond.
        return wait + random.uniform(0.0, 0.25)  # noqa: S311
