"""The worker: claims due events, runs their handlers under a lease, and never loses one.

- Claims go through `inbox_repo.claim_due` (one event per ordering key at a time, its line's
  head; lanes served in turn), in batches of every free slot.
- Wake-ups: `wake()` from the API process right after a commit, PostgreSQL `LISTEN` for separate
  workers, and a short poll as the fallback. Wake-ups are coalesced: while they keep coming,
  claims are at least `COALESCE_SECONDS` apart, so a burst of webhooks costs a few claims, not
  one per webhook; the first wake-up after a quiet spell claims at once.
- A finish is one statement on PostgreSQL (a Slack notice to queue with it makes it a
  transaction).
- Retries back off with the attempts in a row that made no progress: an attempt that committed
  a unit of work that wrote something (`EventContext.progress`) retries after the base delay.
- A heartbeat extends the leases of in-flight events; a sweeper (in every worker) re-queues events
  whose lease expired, i.e. whose worker died. With `RETENTION_DAYS` set, old finished events
  are purged beside them (`inbox/retention.py`).
- `stop()`: stop claiming, let in-flight attempts finish within a grace period, hand back the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync.config import Settings
from wizesync.db import heartbeat_repo, inbox_repo
from wizesync.db.base import utcnow
from wizesync.db.engine import one_statement_transactions
from wizesync.db.errors import is_db_unavailable
from wizesync.db.inbox_repo import ClaimedEvent
from wizesync.db.models import EventStatus
from wizesync.inbox.context import (
    NO_SERVICES,
    EventContext,
    PermanentFailure,
    RetryLater,
    Services,
)
from wizesync.inbox.registry import HandlerRegistry
from wizesync.logs import EVENT_CONTEXT
from wizesync.notify import outbox
from wizesync.notify.slack import Notice
from wizesync.ops import metrics
from wizesync.outbound import OUTBOUND_CALLS

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "wizesync_inbox"
# Claims follow each other at least this far apart while wake-ups keep coming: the webhooks
# of a burst (and the outcomes of a batch) that arrive meanwhile are claimed together. The first
# wake-up after a quiet spell claims at once.
COALESCE_SECONDS = 0.002


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: between half and all of base * 2^(attempt-1), capped."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311  (jitter, not crypto)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    def __init__(
        self,
        *,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        registry: HandlerRegistry,
        worker_id: str | None = None,
        services: Services | None = None,
        companions: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.registry = registry
        # Without services (the queue's own tests) handlers get `NO_SERVICES`: no Slack.
        self.services: Services = services if services is not None else NO_SERVICES
        self.worker_id = worker_id or new_worker_id()
        self.concurrency = settings.worker_concurrency
        self.lease_seconds = settings.worker_lease_seconds
        self.heartbeat_seconds = min(10.0, self.lease_seconds / 3)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._in_flight: dict[int, tuple[asyncio.Task[None], ClaimedEvent]] = {}
        self._background: list[asyncio.Task[None]] = []
        # Long-running jobs of the worker process (the GHL poller): started with the worker,
        # cancelled when it stops.
        self.companions = list(companions)
        self._main: asyncio.Task[None] | None = None
        self._finisher = _Finisher(sessionmaker, self.worker_id)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Run in the current event loop (the API process's in-process worker)."""
        self._main = asyncio.create_task(self.run(), name=f"worker {self.worker_id}")
        return self._main

    def wake(self, after: float = 0.0) -> None:
        """Claim now, or in `after` seconds (an event stored to fall due then)."""
        if after > 0:
            asyncio.get_running_loop().call_later(after, self._wake.set)
        else:
            self._wake.set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def run(self) -> None:
        log.info(
            "worker started", extra={"worker_id": self.worker_id, "concurrency": self.concurrency}
        )
        self._background = [
            asyncio.create_task(self._heartbeat_loop(), name="worker heartbeat"),
            asyncio.create_task(self._sweep_loop(), name="worker sweeper"),
            *(
                asyncio.create_task(job(), name=f"companion {n}")
                for n, job in enumerate(self.companions)
            ),
        ]
        if make_url(self.settings.database_url).get_backend_name() == "postgresql":
            self._background.append(asyncio.create_task(self._listen_loop(), name="listen"))
        if self.settings.retention_days:
            from wizesync.inbox.retention import run_retention

            self._background.append(
                asyncio.create_task(
                    run_retention(self.sessionmaker, self.settings.retention_days), name="retention"
                )
            )
        try:
            await self._beat()
        except Exception as exc:
            # Database down at start: the heartbeat loop keeps trying; the worker must not die.
            log.warning("first heartbeat failed", exc_info=exc)
        try:
            await self._claim_loop()
        finally:
            for task in self._background:
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)

    async def stop(self, grace_seconds: float = 20.0) -> None:
        """Stop claiming; give in-flight attempts `grace_seconds`, then hand the rest back."""
        self._stopping.set()
        self._wake.set()
        tasks = [task for task, _ in self._in_flight.values()]
        if tasks:
            log.info(
                "worker draining", extra={"worker_id": self.worker_id, "in_flight": len(tasks)}
            )
            await asyncio.wait(tasks, timeout=grace_seconds)
        leftover = dict(self._in_flight)
        for task, _ in leftover.values():
            task.cancel()
        if leftover:
            await asyncio.gather(*(t for t, _ in leftover.values()), return_exceptions=True)
            await self._release(list(leftover))
        if self._main is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._main
        with contextlib.suppress(Exception):
            async with self.sessionmaker.begin() as session:
                await heartbeat_repo.stopped(session, worker_id=self.worker_id)
        log.info("worker stopped", extra={"worker_id": self.worker_id, "released": len(leftover)})

    # --- claiming -------------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while not self._stopping.is_set():
            self._wake.clear()
            free = self.concurrency - len(self._in_flight)
            claimed: list[ClaimedEvent] = []
            claim_started = utcnow()
            last_claim = loop.time()
            if free > 0:
                try:
                    async with self.sessionmaker.begin() as session:
                        claimed = await inbox_repo.claim_due(
                            session,
                            worker_id=self.worker_id,
                            lease_seconds=self.lease_seconds,
                            limit=free,
                        )
                    failures = 0
                except Exception as exc:
                    failures += 1
                    level = logging.WARNING if is_db_unavailable(exc) else logging.ERROR
                    log.log(
                        level, "claim failed", exc_info=exc, extra={"worker_id": self.worker_id}
                    )
                    await self._sleep(min(30.0, 0.5 * 2 ** min(failures, 6)))
                    continue
                if self._stopping.is_set():
                    # Stop came while claiming: hand these straight back.
                    await self._release([event.id for event in claimed])
                    break
                for event in claimed:
                    task = asyncio.create_task(self._run(event), name=f"event {event.id}")
                    self._in_flight[event.id] = (task, event)
                if claimed and len(claimed) == free:
                    continue  # there may be more due: claim again at once
            if claimed or self._in_flight:
                # Attempts in flight wake us as they finish; a retry due before the next poll
                # is found by the claim that follows.
                woken = await self._sleep(self.settings.worker_poll_seconds)
            else:
                woken = await self._sleep(await self._idle_timeout(claim_started))
            since = loop.time() - last_claim
            if woken and since < COALESCE_SECONDS and not self._stopping.is_set():
                await asyncio.sleep(COALESCE_SECONDS - since)

    async def _idle_timeout(self, since: datetime | None = None) -> float:
        """Sleep until the next retry falls due, the poll interval at most.

        Only times after `since` (the last claim) count: an event due before it but not claimed
        is behind a running event of its key, or found no free slot; a finishing attempt wakes
        us for it, and counting it would make this 0 and the claim loop spin.
        """
        poll = self.settings.worker_poll_seconds
        now = utcnow()
        try:
            async with self.sessionmaker() as session:
                due = await inbox_repo.next_due_at(session, after=since or now)
        except Exception:
            return poll
        if due is None:
            return poll
        return max(0.0, min(poll, (due - now).total_seconds() + 0.01))

    async def _sleep(self, seconds: float) -> bool:
        """Until woken (True) or `seconds` passed (False)."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

    # --- one attempt ----------------------------------------------------------------------------

    async def _run(self, event: ClaimedEvent) -> None:
        started = time.monotonic()
        metrics.PICKUP_LATENCY.labels(source=event.source).observe(
            max(0.0, (utcnow() - event.received_at).total_seconds())
        )
        context = {
            "inbox_id": event.id,
            "event_id": event.event_id,
            "source": event.source,
            "type": event.type,
            "attempt": event.attempt,
            "worker_id": self.worker_id,
        }
        token = EVENT_CONTEXT.set(context)
        ctx = EventContext(
            event=event,
            settings=self.settings,
            sessionmaker=self.sessionmaker,
            services=self.services,
        )
        calls_token = OUTBOUND_CALLS.set(ctx.outbound_calls)
        outcome, error, next_at = EventStatus.DONE, None, None
        alert: str | None = None
        explicit_delay: float | None = None
        try:
            handler = self.registry.get(event.source, event.type)
            if handler is None:
                raise PermanentFailure(f"no handler registered for {event.source} {event.type}")
            await handler(ctx)
        except asyncio.CancelledError:
            raise  # shutdown past its grace period: stop() hands the event back
        except RetryLater as exc:
            outcome, error, alert = EventStatus.RETRY, f"retry later: {exc}", exc.alert
            explicit_delay = exc.delay
        except PermanentFailure as exc:
            outcome, error = EventStatus.DEAD, str(exc)
        except Exception as exc:
            outcome, error = EventStatus.RETRY, f"{type(exc).__name__}: {exc}"[:2000]
            log.warning("handler failed", exc_info=exc)
        finally:
            OUTBOUND_CALLS.reset(calls_token)
        # Attempts in a row without progress, this one included: what the backoff grows with.
        stalled = (
            0 if ctx.progress or outcome != EventStatus.RETRY else (event.stalled_attempts + 1)
        )
        if outcome == EventStatus.RETRY:
            delay = explicit_delay if explicit_delay is not None else self._backoff(stalled)
            next_at = utcnow() + timedelta(seconds=delay)
        max_attempts = self.settings.worker_max_attempts
        if outcome == EventStatus.RETRY and event.attempts_used >= max_attempts:
            outcome, error = EventStatus.DEAD, f"out of attempts ({event.attempt}): {error}"
        try:
            notice = self._notice_for(event, outcome, error, alert)
            await self._finish(event, outcome, error, next_at, ctx.outbound_calls, notice, stalled)
            elapsed = time.monotonic() - started
            metrics.HANDLER_DURATION.labels(event.source, event.type, outcome.value).observe(
                elapsed
            )
            metrics.ATTEMPTS.labels(event.source, event.type, outcome.value).inc()
            log.info(
                "attempt finished",
                extra={"outcome": outcome.value, "error": error, "ms": round(elapsed * 1000, 1)},
            )
        finally:
            EVENT_CONTEXT.reset(token)
            if self._in_flight.get(event.id, (None, None))[1] is event:
                # Not a newer attempt of the same event this worker claimed after a lapsed lease.
                del self._in_flight[event.id]
            self._wake.set()  # a slot is free

    def _notice_for(
        self, event: ClaimedEvent, outcome: EventStatus, error: str | None, alert: str | None
    ) -> Notice | None:
        """The Slack notice this outcome calls for (an event died, or a wait needs a human),
        queued by `_finish` in the transaction that records the outcome, so the death and its
        notice are stored together; None when there is nothing to tell or no Slack to tell."""
        if outcome == EventStatus.DEAD and outbox.is_notice_event(event):
            # A notice about a dead notice would go the same way (and loop): the log says it.
            log.error(
                "a Slack notice could not be delivered and is dead",
                extra={
                    "inbox_id": event.id,
                    "error": error,
                    "replay": f"wizesync events replay {event.id}",
                },
            )
            return None
        if not outbox.notices_enabled(self.services):
            return None
        if outcome == EventStatus.DEAD:
            return outbox.dead_event_notice(event, error)
        if alert:
            return outbox.alert_notice(alert, event, utcnow())
        return None

    def _backoff(self, stalled: int) -> float:
        """The delay before the next attempt after `stalled` attempts in a row without progress
        (0 or 1: the base delay). An order that gets one step further each time (contact,
        invoice, payment, fulfillment) is not pushed minutes back for failures it got past."""
        return backoff_delay(
            max(1, stalled),
            self.settings.worker_backoff_base_seconds,
            self.settings.worker_backoff_max_seconds,
        )

    async def _finish(
        self,
        event: ClaimedEvent,
        outcome: EventStatus,
        error: str | None,
        next_at: Any,
        calls: list[dict[str, Any]],
        notice: Notice | None = None,
        stalled: int | None = None,
    ) -> None:
        """Record the outcome (and queue its Slack `notice`, in the same transaction); if the
        database is briefly away, keep trying while the lease holds (after that the sweeper
        re-queues the event and the handler runs again)."""
        deadline = time.monotonic() + self.lease_seconds
        delay = 0.2
        while True:
            try:
                result = inbox_repo.Outcome(
                    event=event,
                    status=outcome,
                    error=error,
                    next_attempt_at=next_at,
                    outbound_calls=calls,
                    stalled_attempts=stalled,
                )
                if notice is None:
                    owned = await self._finisher.finish(result)
                else:
                    async with self.sessionmaker.begin() as session:
                        owned = event.id in await inbox_repo.finish_attempts(
                            session, worker_id=self.worker_id, outcomes=[result]
                        )
                        if owned:
                            await outbox.queue_notice(session, self.services, notice)
                if not owned:
                    log.warning("lease lost before finishing; the event was re-queued")
                return
            except Exception as exc:
                if not is_db_unavailable(exc) or time.monotonic() > deadline:
                    log.error("could not record the attempt's outcome", exc_info=exc)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _release(self, event_ids: list[int]) -> None:
        if not event_ids:
            return
        try:
            async with self.sessionmaker.begin() as session:
                await inbox_repo.release(session, worker_id=self.worker_id, event_ids=event_ids)
        except Exception as exc:
            # Not lost: the leases expire and the sweeper re-queues them.
            log.warning("could not release events; their leases will expire", exc_info=exc)
        for event_id in event_ids:
            self._in_flight.pop(event_id, None)

    # --- background -----------------------------------------------------------------------------

    async def _beat(self) -> None:
        async with self.sessionmaker.begin() as session:
            await heartbeat_repo.beat(
                session,
                worker_id=self.worker_id,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                in_flight=len(self._in_flight),
            )
            await inbox_repo.extend_leases(
                session,
                worker_id=self.worker_id,
                event_ids=list(self._in_flight),
                lease_seconds=self.lease_seconds,
            )

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                await self._beat()
            except Exception as exc:
                log.warning("heartbeat failed", exc_info=exc)

    async def _sweep_loop(self) -> None:
        # Jittered so that several workers do not sweep in lockstep.
        while True:
            await asyncio.sleep(self.heartbeat_seconds * random.uniform(0.8, 1.2))  # noqa: S311
            try:
                async with self.sessionmaker.begin() as session:
                    swept = await inbox_repo.sweep_expired_leases(
                        session, max_attempts=self.settings.worker_max_attempts
                    )
                if swept:
                    metrics.LEASES_EXPIRED.inc(len(swept))
                    log.warning("re-queued events whose lease expired", extra={"inbox_ids": swept})
                    self._wake.set()
            except Exception as exc:
                log.warning("lease sweep failed", exc_info=exc)

    async def _listen_loop(self) -> None:
        """PostgreSQL LISTEN on a dedicated connection; reconnects after a drop."""
        import asyncpg

        url = make_url(self.settings.database_url).set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(dsn, timeout=5)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(NOTIFY_CHANNEL, lambda *_args: self._wake.set())
                self._wake.set()  # anything queued while we were not listening
                await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info(
                    "LISTEN connection failed; polling meanwhile",
                    extra={"error": f"{type(exc).__name__}: {exc}"},
                )
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), timeout=2)
            await asyncio.sleep(2)


class _Finisher:
    """Writes the outcomes of attempts that end together in one statement (PostgreSQL) or one
    transaction (SQLite): while one batch is being written, the next one gathers. A batch that
    fails fails each of its attempts, which retry on their own (`Worker._finish`)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], worker_id: str) -> None:
        self.sessionmaker = sessionmaker
        self.worker_id = worker_id
        self._waiting: list[tuple[inbox_repo.Outcome, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def finish(self, outcome: inbox_repo.Outcome) -> bool:
        """True when this worker still owned the event (its lease was not lost)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((outcome, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="finish outcomes")
        return await future

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                async with self.sessionmaker.begin() as session:
                    await one_statement_transactions(session)
                    owned = await inbox_repo.finish_attempts(
                        session,
                        worker_id=self.worker_id,
                        outcomes=[outcome for outcome, _ in batch],
                    )
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for outcome, future in batch:
                if not future.done():
                    future.set_result(outcome.event.id in owned)
