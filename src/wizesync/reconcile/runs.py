"""Reconciliation runs: start, execute under a lease, resume after a crash, finish.

A run row is created `running` with a lease held by the process that executes it. While it runs,
a heartbeat extends the lease and every committed page extends it too; a process that dies stops
both, the lease expires, and the next scheduler tick of any process (`schedule.py`) takes the run
over and continues from its stored cursors (`engine.py`). A run that has been taken over
`MAX_RESUMES` times is marked failed instead (a run that kills its process would otherwise be
retried forever): no run stays `running` longer than a lease past its process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync.config import Settings
from wizesync.db import reconcile_repo as repo
from wizesync.db.base import utcnow
from wizesync.db.reconcile_models import ReconciliationRun
from wizesync.ghl.client import GhlClient
from wizesync.inbox.worker import new_worker_id
from wizesync.ops import metrics
from wizesync.reconcile.budget import ShareLimiter
from wizesync.reconcile.engine import Engine, LeaseLost, Progress
from wizesync.reconcile.summary import queue_summary

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0
MAX_RESUMES = 3


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime


class InvalidWindow(ValueError):
    """`since` not before `until`."""


def default_window(settings: Settings, now: datetime | None = None) -> Window:
    until = now or utcnow()
    return Window(until - timedelta(days=settings.reconcile_window_days), until)


def check_window(since: datetime, until: datetime) -> Window:
    if since.tzinfo is None or until.tzinfo is None:
        raise InvalidWindow("since and until need a time zone (e.g. a trailing Z)")
    if since >= until:
        raise InvalidWindow(
            f"since ({since.isoformat()}) must be before until ({until.isoformat()})"
        )
    return Window(since, until)


class Reconciler:
    def __init__(
        self,
        *,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        services: Any,
        http: httpx.AsyncClient,
        owner: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        progress: Progress | None = None,
        ghl_page_size: int | None = None,
        wizehire_page_size: int | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.services = services
        self.owner = owner or f"reconcile:{new_worker_id()}"
        self.lease_seconds = lease_seconds
        self.progress = progress
        self.limiter = ShareLimiter(
            services.limiter,
            limit=settings.ghl_rate_limit_max,
            window_seconds=settings.ghl_rate_limit_window_seconds,
            reserve=min(settings.reconcile_ghl_reserve, settings.ghl_rate_limit_max - 1),
        )
        self.ghl = GhlClient(
            http,
            base_url=settings.ghl_api_url,
            version=settings.ghl_api_version,
            tokens=services.tokens,
            limiter=self.limiter,
        )
        self._page_sizes = {
            k: v
            for k, v in (
                ("ghl_page_size", ghl_page_size),
                ("wizehire_page_size", wizehire_page_size),
            )
            if v
        }
        self._tasks: set[asyncio.Task[Any]] = set()

    def locations(self) -> list[str]:
        """Every location the mapping routes to (and the Private Integration Token's)."""
        mapping = self.services.mapping
        found = set(mapping.locations.accounts.values())
        if mapping.locations.default:
            found.add(mapping.locations.default)
        if self.settings.ghl_location_id:
            found.add(self.settings.ghl_location_id)
        return sorted(found)

    # --- starting --------------------------------------------------------------------------------

    async def start(self, *, trigger: str, window: Window, heal: bool) -> int:
        async with self.sessionmaker.begin() as session:
            run_id = await repo.create_run(
                session,
                trigger=trigger,
                since=window.since,
                until=window.until,
                heal=heal,
                owner=self.owner,
                lease_seconds=self.lease_seconds,
            )
        assert run_id is not None  # no fire time: nothing to collide with
        log.info("reconciliation started", extra={"run_id": run_id, "trigger": trigger})
        return run_id

    async def start_scheduled(self, fire_time: datetime) -> int | None:
        """The run of this fire time, if this process is the one to create it."""
        window = Window(fire_time - timedelta(days=self.settings.reconcile_window_days), fire_time)
        async with self.sessionmaker.begin() as session:
            run_id = await repo.create_run(
                session,
                trigger="scheduled",
                since=window.since,
                until=window.until,
                heal=True,
                owner=self.owner,
                lease_seconds=self.lease_seconds,
                fire_time=fire_time,
            )
        if run_id is not None:
            log.info(
                "scheduled reconciliation started",
                extra={"run_id": run_id, "fire_time": fire_time.isoformat()},
            )
        return run_id

    async def latest_fire_time(self) -> datetime | None:
        async with self.sessionmaker() as session:
            return await repo.latest_fire_time(session)

    def spawn(self, run_id: int) -> asyncio.Task[ReconciliationRun | None]:
        """Execute in the background (the admin endpoint answers 202 at once)."""
        task = asyncio.create_task(self.execute(run_id), name=f"reconciliation {run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        """Stop background runs; their leases expire and another process resumes them."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # --- executing -------------------------------------------------------------------------------

    async def execute(
        self, run_id: int, *, announce: bool | None = None
    ) -> ReconciliationRun | None:
        """Carry the run (already leased by this process) to done or failed; the run as it ends,
        or None when another process took it over. `announce`: queue the Slack summary
        (default: for scheduled runs)."""
        async with self.sessionmaker() as session:
            run = await repo.get_run(session, run_id)
        if run is None or run.status != "running" or run.lease_owner != self.owner:
            return None
        engine = Engine(
            sessionmaker=self.sessionmaker,
            ghl=self.ghl,
            wizehire=self.services.wizehire,
            mapping=self.services.mapping,
            owner=self.owner,
            lease_seconds=self.lease_seconds,
            progress=self.progress,
            **self._page_sizes,
        )
        heartbeat = asyncio.create_task(self._heartbeat(run_id))
        try:
            counts = await engine.run(run, self.locations())
        except LeaseLost as exc:
            log.warning(
                "reconciliation taken over by another process",
                extra={"run_id": run_id, "reason": str(exc)},
            )
            return None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("reconciliation failed", exc_info=exc, extra={"run_id": run_id})
            return await self._finish(run_id, "failed", error=_in_words(exc))
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        if announce is None:
            announce = run.trigger == "scheduled"
        return await self._finish(run_id, "done", counts=counts, announce=announce)

    async def resume_abandoned(self) -> list[int]:
        """Take over runs whose process died and carry them on (or fail them after
        `MAX_RESUMES` take-overs); their ids."""
        handled: list[int] = []
        while True:
            async with self.sessionmaker.begin() as session:
                run = await repo.claim_abandoned_run(
                    session, owner=self.owner, lease_seconds=self.lease_seconds
                )
                if run is None:
                    return handled
                state = dict(run.state or {})
                state["resumes"] = int(state.get("resumes", 0)) + 1
                await repo.save_progress(
                    session,
                    run.id,
                    owner=self.owner,
                    state=state,
                    counts=dict(run.counts or {}),
                    lease_seconds=self.lease_seconds,
                )
            handled.append(run.id)
            if state["resumes"] > MAX_RESUMES:
                log.warning(
                    "reconciliation abandoned too often: marked failed", extra={"run_id": run.id}
                )
                await self._finish(
                    run.id,
                    "failed",
                    error=(f"its process stopped {state['resumes']} times before it finished"),
                )
                continue
            log.info("resuming an abandoned reconciliation", extra={"run_id": run.id})
            await self.execute(run.id)

    async def _finish(
        self,
        run_id: int,
        status: str,
        *,
        counts: dict[str, int] | None = None,
        error: str | None = None,
        announce: bool = False,
    ) -> ReconciliationRun | None:
        async with self.sessionmaker.begin() as session:
            if counts is None:
                counts = await repo.count_items(session, run_id)
            finished = await repo.finish_run(
                session, run_id, owner=self.owner, status=status, counts=counts, error=error
            )
            if not finished:
                return None
            run = await repo.get_run(session, run_id)
            assert run is not None
            if announce and status == "done":
                await queue_summary(session, self.services, run, counts, self.settings.public_url)
        if status == "done":
            metrics.set_reconciliation_counts(counts, finished_at=time.time())
        log.info(
            "reconciliation finished",
            extra={"run_id": run_id, "status": status, "counts": counts, "error": error},
        )
        return run

    async def _heartbeat(self, run_id: int) -> None:
        """Keep the lease while a page waits on GHL's budget (pages also extend it)."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                async with self.sessionmaker.begin() as session:
                    kept = await repo.extend_lease(
                        session, run_id, owner=self.owner, lease_seconds=self.lease_seconds
                    )
            except Exception as exc:  # the database away: the next page's save will tell
                log.warning("reconciliation lease not extended", exc_info=exc)
                continue
            if not kept:
                return


def _in_words(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:2000]
