"""The inbox and its queue: every SQL statement that stores, claims, finishes or lists events.

The queue is the inbox table itself (status + next_attempt_at + lease), so storing an event and
queueing it is one INSERT in one transaction.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer, load_only, selectinload

from wizesync.db.base import UTCDateTime, utcnow
from wizesync.db.models import EventAttempt, EventStatus, InboxEvent, InboxLane, JSONType
from wizesync.inbox.lanes import lane_for


@dataclass(frozen=True, slots=True)
class ClaimedEvent:
    """What a handler gets to see of an event it is running."""

    id: int
    source: str
    event_id: str
    type: str
    ordering_key: str | None
    attempt: int
    payload: Any
    received_at: datetime
    replay_base: int = 0
    # Attempts in a row before this one that committed no progress (see the worker's backoff).
    stalled_attempts: int = 0

    @property
    def attempts_used(self) -> int:
        """Attempts since the last replay: what counts against the maximum."""
        return self.attempt - self.replay_base


@dataclass(frozen=True, slots=True)
class NewEvent:
    source: str
    event_id: str
    type: str
    ordering_key: str | None
    status: EventStatus
    raw_body: bytes
    payload: Any
    last_error: str | None = None
    delay_seconds: float = 0.0  # due this long after it was stored


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """The event already stored under a (source, event id): its row and its body's hash (None
    for rows stored before the hash was kept: `stored_body_sha256` reads it then)."""

    id: int
    body_sha256: str | None


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


# --- ingest ----------------------------------------------------------------------------------


async def insert_event(session: AsyncSession, event: NewEvent) -> int | None:
    """Store an event once per (source, event_id); None when it was already there.

    On PostgreSQL the webhooks store theirs through the driver instead (`db/inbox_driver.py`),
    with these same values and this same statement: a session's set-up and teardown cost more
    CPU than the INSERT itself."""
    stmt = _insert_once(_dialect(session))
    return (await session.execute(stmt, insert_values(event))).scalar_one_or_none()


def insert_values(event: NewEvent) -> dict[str, Any]:
    """The INSERT's parameters for `event` (the columns not named here take their defaults)."""
    now = utcnow()
    values = {
        "source": event.source,
        "event_id": event.event_id,
        "type": event.type,
        "ordering_key": event.ordering_key,
        "status": event.status.value,
        "attempts": 0,
        "next_attempt_at": now + timedelta(seconds=event.delay_seconds),
        "received_at": now,
        "updated_at": now,
        "raw_body": event.raw_body,
        "body_sha256": hashlib.sha256(event.raw_body).hexdigest(),
        "payload": event.payload,
        "last_error": event.last_error,
        "lane": lane_for(event.source, event.payload),
    }
    if event.status in (EventStatus.IGNORED,):
        values["handled_at"] = now
    return values


@functools.cache
def _insert_once(dialect: str) -> Any:
    """The webhook INSERT, built once per dialect on the Core table: the values travel as
    parameters, so no request pays for building the statement, its cache key or the ORM's
    bulk-insert machinery."""
    table = cast(Table, InboxEvent.__table__)
    dialect_insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return (
        dialect_insert(table)
        .on_conflict_do_nothing(index_elements=["source", "event_id"])
        .returning(table.c.id)
    )


def insert_statement(dialect: str) -> Any:
    """The statement `insert_event` runs (compiled once more by `db/inbox_driver.py`)."""
    return _insert_once(dialect)


async def find_event(session: AsyncSession, source: str, event_id: str) -> StoredEvent | None:
    stmt = find_event_statement(source, event_id)
    row = (await session.execute(stmt)).one_or_none()
    return StoredEvent(row.id, row.body_sha256) if row is not None else None


def find_event_statement(source: str, event_id: str) -> Any:
    return select(InboxEvent.id, InboxEvent.body_sha256).where(
        InboxEvent.source == source, InboxEvent.event_id == event_id
    )


async def stored_body_sha256(session: AsyncSession, row_id: int) -> str | None:
    """The hash of a stored row's raw body, computed from the body when the row predates the
    `body_sha256` column."""
    row = (
        await session.execute(
            select(InboxEvent.body_sha256, InboxEvent.raw_body).where(InboxEvent.id == row_id)
        )
    ).one_or_none()
    if row is None:
        return None
    return row.body_sha256 or hashlib.sha256(row.raw_body).hexdigest()


# --- the worker's side -----------------------------------------------------------------------
#
# The queue's rules:
#
# 1. Lines. Events with the same ordering key form a line in id (arrival) order; one event per
#    line is its HEAD (`inbox_events.head`): the event running, else the earliest waiting one.
#    Only heads are claimed, so a key's events never overlap and run in arrival order, and an
#    event stored late with a lower id (it committed after a later one) waits for the running
#    head, then goes first. Events without a key are heads of their own.
# 2. The head is kept by database triggers (migration b41e7c9a3d05), in the statement that
#    changes the line: storing an event (head when nothing of its key is pending), an attempt
#    leaving the line (done, dead: the earliest pending event of the key becomes head), a replay
#    entering it (ahead of later events that are only waiting), an attempt ending in a retry
#    while an earlier event waits (that one goes first). On PostgreSQL each of these takes a
#    transaction-scoped advisory lock on the key (never the claim), so a store and a finish of
#    one key cannot miss each other. The lock is held until the transaction commits: one that
#    stores events of thousands of keys (a bulk import) holds thousands of locks and can fill
#    PostgreSQL's lock table (`max_locks_per_transaction` x connections); store such a batch in
#    chunks of a few thousand. Pending events are never deleted (that would strand the line),
#    and a pending event's key never changes (only a replay re-reads it).
# 3. Claims read heads only, through the partial index `ix_inbox_events_ready (lane,
#    next_attempt_at, id) WHERE head AND status IN ('queued', 'retry')`: the cost of a claim is
#    the size of its batch, whatever the backlog or the statistics (the planner is pinned to
#    index scans for the claim's transaction). Rows are taken FOR UPDATE SKIP LOCKED, so
#    claimers in many processes never wait for each other or claim a row twice.
# 4. Fairness: claims take from the lane (tenant, `inbox/lanes.py`) served longest ago first,
#    and within a lane the event due longest first. A lane with a burst of events gets one
#    batch, then every other lane with work gets its turn.
# 5. A claim is one statement on PostgreSQL (pick, mark running, log the attempts, mark the
#    lanes served), and so is a finish (the event's outcome and its attempt row).

_WAITING = (EventStatus.QUEUED.value, EventStatus.RETRY.value)

# The planner takes these index paths whatever its statistics say (fresh after a burst they
# rarely are): without them a stale estimate can make it sort every ready head, or read every
# lane, for a batch of a few events. Transaction-scoped. JIT off: the penalty that steers the
# planner away from the other paths also pushes the plan's cost past `jit_above_cost`, and
# compiling it would cost a second per claim. `synchronous_commit` off: below.
_PIN_CLAIM_PLAN = text(
    "SELECT set_config('enable_seqscan', 'off', true), "
    "set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true), "
    "set_config('jit', 'off', true), set_config('synchronous_commit', 'off', true)"
)

# The queue's own bookkeeping (a claim, an outcome) commits without waiting for its WAL flush
# (`synchronous_commit = off` for that transaction only; PostgreSQL flushes it within
# `wal_writer_delay`, 200 ms by default). What a crash of PostgreSQL itself could lose is the
# last few claims or outcomes, never anything a handler committed (its units of work keep the
# server's setting): a lost claim puts the event back in the queue, a lost outcome leaves it
# running until its lease expires; either way the handler runs again, as after a worker crash,
# and handlers are idempotent. Waiting for the flush twice per event (claim and outcome) would
# be the longest step of a key's line on a busy disk. (The finish sets it inside its one statement,
# `unflushed`; the setting is read at commit, which ends that statement.)

_PG_CLAIM = (
    text(
        """
    WITH picked AS (
      SELECT e.id, l.lane
      FROM inbox_lanes AS l
      CROSS JOIN LATERAL (
        SELECT e.id FROM inbox_events AS e
        WHERE e.lane = l.lane AND e.head AND e.status IN ('queued', 'retry')
          AND e.next_attempt_at <= :now
        ORDER BY e.next_attempt_at, e.id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
      ) AS e
      ORDER BY l.served_at, l.lane
      LIMIT :limit
    ), claimed AS (
      UPDATE inbox_events AS ev
      SET status = 'running', attempts = ev.attempts + 1, lease_owner = :worker_id,
          lease_expires_at = :lease_until, updated_at = :now
      FROM picked WHERE ev.id = picked.id
      RETURNING ev.id, ev.source, ev.event_id, ev.type, ev.ordering_key, ev.attempts,
                ev.payload, ev.received_at, ev.replay_base, ev.stalled_attempts
    ), logged AS (
      INSERT INTO event_attempts (event_id, attempt, worker_id, started_at)
      SELECT id, attempts, :worker_id, :now FROM claimed
    ), served AS (
      UPDATE inbox_lanes SET served_at = :now
      WHERE lane IN (SELECT lane FROM inbox_lanes WHERE lane IN (SELECT lane FROM picked)
                     ORDER BY lane FOR UPDATE SKIP LOCKED)
    )
    SELECT * FROM claimed
    """
    )
    .bindparams(
        bindparam("now", type_=UTCDateTime()),
        bindparam("lease_until", type_=UTCDateTime()),
        bindparam("limit", type_=Integer()),
        bindparam("worker_id", type_=String()),
    )
    .columns(
        id=BigInteger(),
        source=String(),
        event_id=String(),
        type=String(),
        ordering_key=String(),
        attempts=Integer(),
        payload=JSONType,
        received_at=UTCDateTime(),
        replay_base=Integer(),
        stalled_attempts=Integer(),
    )
)


def _claimed(row: Any) -> ClaimedEvent:
    return ClaimedEvent(
        id=row.id,
        source=row.source,
        event_id=row.event_id,
        type=row.type,
        ordering_key=row.ordering_key,
        attempt=row.attempts,
        payload=row.payload,
        received_at=row.received_at,
        replay_base=row.replay_base,
        stalled_attempts=row.stalled_attempts,
    )


async def claim_due(
    session: AsyncSession, *, worker_id: str, lease_seconds: float, limit: int
) -> list[ClaimedEvent]:
    """Lease up to `limit` due heads to this worker (the rules above), in id order.

    PostgreSQL: one statement after pinning the plan; call it in a transaction (the pin is
    transaction-scoped). SQLite: the transaction began IMMEDIATE, which already serialises
    writers; the same choice in four statements.
    """
    now = utcnow()
    lease_until = now + timedelta(seconds=lease_seconds)
    if _dialect(session) == "postgresql":
        await session.execute(_PIN_CLAIM_PLAN)
        rows = (
            await session.execute(
                _PG_CLAIM,
                {
                    "now": now,
                    "lease_until": lease_until,
                    "limit": limit,
                    "worker_id": worker_id,
                },
            )
        ).all()
        return sorted((_claimed(row) for row in rows), key=lambda event: event.id)

    stmt = (
        select(
            InboxEvent.id,
            InboxEvent.source,
            InboxEvent.event_id,
            InboxEvent.type,
            InboxEvent.ordering_key,
            InboxEvent.attempts,
            InboxEvent.payload,
            InboxEvent.received_at,
            InboxEvent.replay_base,
            InboxEvent.stalled_attempts,
            InboxEvent.lane,
        )
        .join(InboxLane, InboxLane.lane == InboxEvent.lane)
        .where(
            InboxEvent.head.is_(True),
            InboxEvent.status.in_(_WAITING),
            InboxEvent.next_attempt_at <= now,
        )
        .order_by(InboxLane.served_at, InboxLane.lane, InboxEvent.next_attempt_at, InboxEvent.id)
        .limit(limit)
    )
    rows = sorted((await session.execute(stmt)).all(), key=lambda row: row.id)
    if not rows:
        return []
    ids = [row.id for row in rows]
    await session.execute(
        update(InboxEvent)
        .where(InboxEvent.id.in_(ids))
        .values(
            status=EventStatus.RUNNING.value,
            attempts=InboxEvent.attempts + 1,
            lease_owner=worker_id,
            lease_expires_at=lease_until,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        insert(EventAttempt),
        [
            {
                "event_id": row.id,
                "attempt": row.attempts + 1,
                "worker_id": worker_id,
                "started_at": now,
            }
            for row in rows
        ],
    )
    await session.execute(
        update(InboxLane)
        .where(InboxLane.lane.in_({row.lane for row in rows}))
        .values(served_at=now)
        .execution_options(synchronize_session=False)
    )
    return [replace(_claimed(row), attempt=row.attempts + 1) for row in rows]


async def next_due_at(session: AsyncSession, after: datetime | None = None) -> datetime | None:
    """When the earliest waiting event falls due (for the worker's sleep); only times later
    than `after` when given (events already due but blocked are not worth waking for)."""
    stmt = select(func.min(InboxEvent.next_attempt_at)).where(
        InboxEvent.status.in_([EventStatus.QUEUED.value, EventStatus.RETRY.value])
    )
    if after is not None:
        stmt = stmt.where(InboxEvent.next_attempt_at > after)
    return (await session.execute(stmt)).scalar_one_or_none()


async def extend_leases(
    session: AsyncSession, *, worker_id: str, event_ids: Sequence[int], lease_seconds: float
) -> int:
    if not event_ids:
        return 0
    result = await session.execute(
        update(InboxEvent)
        .where(
            InboxEvent.id.in_(list(event_ids)),
            InboxEvent.lease_owner == worker_id,
            InboxEvent.status == EventStatus.RUNNING.value,
        )
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]


LEASE_LOST = "lease lost before the attempt finished"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended, for `finish_attempts`."""

    event: ClaimedEvent
    status: EventStatus
    error: str | None = None
    next_attempt_at: datetime | None = None  # for a retry; None: due at once
    outbound_calls: list[dict[str, Any]] | None = None
    # The event's attempts in a row without progress, as of this one (None: left as it is).
    stalled_attempts: int | None = None


# Finishing on PostgreSQL: one statement for a whole batch of attempts, built once, the values
# as arrays (no statement to build per attempt): the events' outcomes and their attempt rows.
# Only the current attempt of the lease holder closes an event (the same worker may have
# re-claimed it after its lease lapsed); any other attempt's row says "lost".
_PG_FINISH = text(
    """
    WITH input AS (
      SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:attempts AS integer[]),
                           CAST(:statuses AS text[]), CAST(:errors AS text[]),
                           CAST(:next_ats AS timestamptz[]), CAST(:stalled AS integer[]),
                           CAST(:calls AS text[]))
        AS i(id, attempt, status, error, next_at, stalled, calls)
    ), closed AS (
      UPDATE inbox_events AS e
      SET status = i.status, lease_owner = NULL, lease_expires_at = NULL, last_error = i.error,
          updated_at = :now,
          handled_at = CASE WHEN i.status IN ('done', 'dead') THEN :now ELSE e.handled_at END,
          next_attempt_at = CASE WHEN i.status = 'retry' THEN coalesce(i.next_at, :now)
                                 ELSE e.next_attempt_at END,
          stalled_attempts = coalesce(i.stalled, e.stalled_attempts)
      FROM input AS i
      WHERE e.id = i.id AND e.lease_owner = :worker_id AND e.status = 'running'
        AND e.attempts = i.attempt
      RETURNING e.id
    ), unflushed AS (
      SELECT set_config('synchronous_commit', 'off', true) AS setting
    ), logged AS (
      UPDATE event_attempts AS a
      SET finished_at = :now,
          outcome = CASE WHEN c.id IS NOT NULL THEN i.status ELSE 'lost' END,
          error = CASE WHEN c.id IS NOT NULL THEN i.error ELSE coalesce(i.error, :lost) END,
          outbound_calls = CAST(i.calls AS jsonb)
      FROM input AS i LEFT JOIN closed AS c ON c.id = i.id
      WHERE a.event_id = i.id AND a.attempt = i.attempt
    )
    SELECT closed.id FROM unflushed CROSS JOIN closed
    """
).bindparams(
    bindparam("now", type_=UTCDateTime()),
    bindparam("worker_id", type_=String()),
    bindparam("lost", type_=String()),
)


async def finish_attempts(
    session: AsyncSession, *, worker_id: str, outcomes: Sequence[Outcome]
) -> set[int]:
    """Record how these attempts ended; the ids of the events this worker still owned (the
    others' leases were lost: another worker owns them now, their attempt rows say "lost").

    PostgreSQL: one statement for the batch (it commits by itself in autocommit). SQLite: two
    statements per attempt, in the caller's transaction.
    """
    now = utcnow()
    if not outcomes:
        return set()
    if _dialect(session) == "postgresql":
        rows = await session.execute(
            _PG_FINISH,
            {
                "now": now,
                "worker_id": worker_id,
                "lost": LEASE_LOST,
                "ids": [o.event.id for o in outcomes],
                "attempts": [o.event.attempt for o in outcomes],
                "statuses": [o.status.value for o in outcomes],
                "errors": [o.error for o in outcomes],
                "next_ats": [o.next_attempt_at for o in outcomes],
                "stalled": [o.stalled_attempts for o in outcomes],
                "calls": [
                    json.dumps(o.outbound_calls, default=str) if o.outbound_calls else None
                    for o in outcomes
                ],
            },
        )
        return set(rows.scalars())
    owned_ids = set()
    for outcome in outcomes:
        if await _finish_one(session, worker_id, outcome, now):
            owned_ids.add(outcome.event.id)
    return owned_ids


async def _finish_one(
    session: AsyncSession, worker_id: str, outcome: Outcome, now: datetime
) -> bool:
    event = outcome.event
    values: dict[str, Any] = {
        "status": outcome.status.value,
        "lease_owner": None,
        "lease_expires_at": None,
        "last_error": outcome.error,
        "updated_at": now,
    }
    if outcome.status in (EventStatus.DONE, EventStatus.DEAD):
        values["handled_at"] = now
    if outcome.status == EventStatus.RETRY:
        values["next_attempt_at"] = outcome.next_attempt_at or now
    if outcome.stalled_attempts is not None:
        values["stalled_attempts"] = outcome.stalled_attempts
    result = await session.execute(
        update(InboxEvent)
        .where(
            InboxEvent.id == event.id,
            InboxEvent.lease_owner == worker_id,
            InboxEvent.status == EventStatus.RUNNING.value,
            InboxEvent.attempts == event.attempt,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    owned = bool(result.rowcount)  # type: ignore[attr-defined]
    await session.execute(
        update(EventAttempt)
        .where(EventAttempt.event_id == event.id, EventAttempt.attempt == event.attempt)
        .values(
            finished_at=now,
            outbound_calls=outcome.outbound_calls or None,
            outcome=outcome.status.value if owned else "lost",
            error=outcome.error if owned else (outcome.error or LEASE_LOST),
        )
        .execution_options(synchronize_session=False)
    )
    return owned


async def release(session: AsyncSession, *, worker_id: str, event_ids: Sequence[int]) -> int:
    """Hand leased events back on shutdown so another worker takes them at once."""
    if not event_ids:
        return 0
    now = utcnow()
    result = await session.execute(
        update(InboxEvent)
        .where(
            InboxEvent.id.in_(list(event_ids)),
            InboxEvent.lease_owner == worker_id,
            InboxEvent.status == EventStatus.RUNNING.value,
        )
        .values(
            status=EventStatus.RETRY.value,
            lease_owner=None,
            lease_expires_at=None,
            next_attempt_at=now,
            last_error="released by a worker shutting down",
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(EventAttempt)
        .where(
            EventAttempt.event_id.in_(list(event_ids)),
            EventAttempt.worker_id == worker_id,
            EventAttempt.outcome.is_(None),
        )
        .values(finished_at=now, outcome="released", error="worker shut down mid-attempt")
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]


async def sweep_expired_leases(session: AsyncSession, *, max_attempts: int) -> list[int]:
    """Re-queue events whose worker vanished (lease expired); dead once out of attempts."""
    now = utcnow()
    stmt = select(InboxEvent.id, InboxEvent.attempts, InboxEvent.replay_base).where(
        InboxEvent.status == EventStatus.RUNNING.value, InboxEvent.lease_expires_at < now
    )
    if _dialect(session) == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = (await session.execute(stmt)).all()
    if not rows:
        return []
    error = "lease expired: the worker stopped answering mid-attempt"
    for row in rows:
        exhausted = row.attempts - row.replay_base >= max_attempts
        await session.execute(
            update(InboxEvent)
            .where(InboxEvent.id == row.id, InboxEvent.status == EventStatus.RUNNING.value)
            .values(
                status=(EventStatus.DEAD if exhausted else EventStatus.RETRY).value,
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=now,
                last_error=error + (" (out of attempts)" if exhausted else ""),
                handled_at=now if exhausted else None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    ids = [row.id for row in rows]
    await session.execute(
        update(EventAttempt)
        .where(EventAttempt.event_id.in_(ids), EventAttempt.outcome.is_(None))
        .values(finished_at=now, outcome="lost", error=error)
        .execution_options(synchronize_session=False)
    )
    return ids


# --- operators' side ---------------------------------------------------------------------------


async def lock_for_replay(session: AsyncSession, event_id: int) -> InboxEvent | None:
    """The event, locked; ValueError when it is still queued or running (replay would race it)."""
    event = await session.get(InboxEvent, event_id, with_for_update=True)
    if event is None:
        return None
    if event.status not in EventStatus.replayable():
        raise ValueError(f"event {event_id} is {event.status}; only finished events replay")
    return event


async def requeue(
    session: AsyncSession,
    event: InboxEvent,
    *,
    type_: str | None = None,
    ordering_key: str | None = None,
    payload: Any = None,
) -> None:
    """Back to the queue, due now; a re-read body may bring its type, key and payload."""
    now = utcnow()
    if type_ is not None:
        event.type = type_
        event.ordering_key = ordering_key
        event.payload = payload
    event.status = EventStatus.QUEUED.value
    event.replay_base = event.attempts
    event.stalled_attempts = 0
    event.next_attempt_at = now
    event.handled_at = None
    event.last_error = None
    event.updated_at = now
    await session.flush()


async def get_event(session: AsyncSession, event_id: int) -> InboxEvent | None:
    stmt = (
        select(InboxEvent)
        .where(InboxEvent.id == event_id)
        .options(selectinload(InboxEvent.attempt_log))
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_events(
    session: AsyncSession,
    *,
    status: str | None = None,
    source: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[InboxEvent]:
    """Newest first; payload and raw body are not loaded."""
    stmt = select(InboxEvent).order_by(InboxEvent.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(InboxEvent.status == status)
    if source:
        stmt = stmt.where(InboxEvent.source == source)
    if before_id:
        stmt = stmt.where(InboxEvent.id < before_id)
    stmt = stmt.options(defer(InboxEvent.raw_body), defer(InboxEvent.payload))
    return list((await session.execute(stmt)).scalars())


async def queue_counts(session: AsyncSession) -> dict[str, int]:
    stmt = select(InboxEvent.status, func.count()).group_by(InboxEvent.status)
    counts = {status.value: 0 for status in EventStatus}
    counts.update({status: n for status, n in (await session.execute(stmt)).all()})
    return counts


async def oldest_waiting_received_at(session: AsyncSession) -> datetime | None:
    stmt = select(func.min(InboxEvent.received_at)).where(
        InboxEvent.status.in_([EventStatus.QUEUED.value, EventStatus.RETRY.value])
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def newest_dead(session: AsyncSession, limit: int = 20) -> list[InboxEvent]:
    stmt = (
        select(InboxEvent)
        .where(InboxEvent.status == EventStatus.DEAD.value)
        .order_by(InboxEvent.handled_at.desc(), InboxEvent.id.desc())
        .limit(limit)
    )
    stmt = stmt.options(
        load_only(
            InboxEvent.id,
            InboxEvent.source,
            InboxEvent.type,
            InboxEvent.last_error,
            InboxEvent.handled_at,
            InboxEvent.attempts,
        )
    )
    return list((await session.execute(stmt)).scalars())


async def flow_stats(session: AsyncSession, since: datetime) -> list[dict[str, Any]]:
    """Per (source, type): last success, and attempts that succeeded or failed since `since`."""
    success = EventAttempt.outcome == EventStatus.DONE.value
    failure = EventAttempt.outcome.in_([EventStatus.RETRY.value, EventStatus.DEAD.value, "lost"])
    stmt = (
        select(
            InboxEvent.source,
            InboxEvent.type,
            func.max(EventAttempt.finished_at).filter(success),
            func.count().filter(and_(success, EventAttempt.finished_at >= since)),
            func.count().filter(and_(failure, EventAttempt.finished_at >= since)),
        )
        .join(InboxEvent, InboxEvent.id == EventAttempt.event_id)
        .group_by(InboxEvent.source, InboxEvent.type)
    )
    out = []
    for source, type_, last_success, ok, failed in (await session.execute(stmt)).all():
        if isinstance(last_success, str):  # SQLite's max() over text returns text
            last_success = datetime.fromisoformat(last_success)
        out.append(
            {
                "source": source,
                "type": type_,
                "last_success_at": last_success,
                "successes_24h": ok,
                "failures_24h": failed,
            }
        )
    return out
