"""The inbox and its queue: every SQL statement that stores, claims, finishes or lists events.

The queue is the inbox table itself (status + next_attempt_at + lease), so storing an event and
queueing it is one INSERT in one transaction.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased, defer, load_only, selectinload

from wizesync.db.base import utcnow
from wizesync.db.models import EventAttempt, EventStatus, InboxEvent

# Any constant will do; it names the transaction-scoped lock that serialises claims on PostgreSQL.
CLAIM_ADVISORY_LOCK = 0x77697A65  # "wize"


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


def _dialect(session: AsyncSession | AsyncConnection) -> str:
    if isinstance(session, AsyncConnection):
        return session.dialect.name
    return session.get_bind().dialect.name


# --- ingest ----------------------------------------------------------------------------------


async def insert_event(session: AsyncSession | AsyncConnection, event: NewEvent) -> int | None:
    """Store an event once per (source, event_id); None when it was already there.

    Takes a session or a bare connection: the webhook path on PostgreSQL skips the session
    (its set-up and teardown cost more CPU than building the INSERT ever did); on PostgreSQL
    the webhooks go further, through the driver (`db/inbox_driver.py`), with these same values
    and this same statement."""
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


async def find_event(
    session: AsyncSession | AsyncConnection, source: str, event_id: str
) -> StoredEvent | None:
    stmt = find_event_statement(source, event_id)
    row = (await session.execute(stmt)).one_or_none()
    return StoredEvent(row.id, row.body_sha256) if row is not None else None


def find_event_statement(source: str, event_id: str) -> Any:
    return select(InboxEvent.id, InboxEvent.body_sha256).where(
        InboxEvent.source == source, InboxEvent.event_id == event_id
    )


async def stored_body_sha256(session: AsyncSession | AsyncConnection, row_id: int) -> str | None:
    """The hash of a stored row's raw body, computed from the body when the row predates the
    `body_sha256` column."""
    row = (await session.execute(
        select(InboxEvent.body_sha256, InboxEvent.raw_body).where(InboxEvent.id == row_id)
    )).one_or_none()
    if row is None:
        return None
    return row.body_sha256 or hashlib.sha256(row.raw_body).hexdigest()


# --- the worker's side -----------------------------------------------------------------------


def _claimable(now: datetime) -> Any:
    """Due events that are at the head of their ordering key's line.

    An event waits while an earlier event of its key is still pending, or while ANY event of its
    key is running: the second rule covers a later-id event that committed (and ran) first.
    """
    other = aliased(InboxEvent)
    blocked = exists().where(
        other.ordering_key == InboxEvent.ordering_key,
        other.id != InboxEvent.id,
        or_(
            other.status == EventStatus.RUNNING.value,
            and_(
                other.id < InboxEvent.id,
                other.status.in_([EventStatus.QUEUED.value, EventStatus.RETRY.value]),
            ),
        ),
    )
    return and_(
        InboxEvent.status.in_([EventStatus.QUEUED.value, EventStatus.RETRY.value]),
        InboxEvent.next_attempt_at <= now,
        or_(InboxEvent.ordering_key.is_(None), ~blocked),
    )


async def claim_due(
    session: AsyncSession, *, worker_id: str, lease_seconds: float, limit: int
) -> list[ClaimedEvent]:
    """Lease up to `limit` due events to this worker, oldest first, one per ordering key.

    PostgreSQL: claims are serialised by a transaction-scoped advisory lock, so two claimers never
    both see an ordering key as free; rows are taken FOR UPDATE SKIP LOCKED so an admin replay or
    the sweeper holding a row never stalls a claim. SQLite: the transaction began IMMEDIATE, which
    already serialises writers.
    """
    now = utcnow()
    postgres = _dialect(session) == "postgresql"
    if postgres:
        await session.execute(select(func.pg_advisory_xact_lock(CLAIM_ADVISORY_LOCK)))
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
        )
        .where(_claimable(now))
        .order_by(InboxEvent.id)
        .limit(limit * 4)  # over-read: keys repeat, and we keep one event per key
    )
    if postgres:
        stmt = stmt.with_for_update(skip_locked=True, of=InboxEvent)
    rows = (await session.execute(stmt)).all()

    chosen, seen_keys = [], set()
    for row in rows:
        if row.ordering_key is not None:
            if row.ordering_key in seen_keys:
                continue
            seen_keys.add(row.ordering_key)
        chosen.append(row)
        if len(chosen) == limit:
            break
    if not chosen:
        return []

    ids = [row.id for row in chosen]
    await session.execute(
        update(InboxEvent)
        .where(InboxEvent.id.in_(ids))
        .values(
            status=EventStatus.RUNNING.value,
            attempts=InboxEvent.attempts + 1,
            lease_owner=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
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
            for row in chosen
        ],
    )
    return [
        ClaimedEvent(
            id=row.id,
            source=row.source,
            event_id=row.event_id,
            type=row.type,
            ordering_key=row.ordering_key,
            attempt=row.attempts + 1,
            payload=row.payload,
            received_at=row.received_at,
            replay_base=row.replay_base,
        )
        for row in chosen
    ]


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


async def finish_attempt(
    session: AsyncSession,
    *,
    event: ClaimedEvent,
    worker_id: str,
    outcome: EventStatus,
    error: str | None = None,
    next_attempt_at: datetime | None = None,
    outbound_calls: list[dict[str, Any]] | None = None,
) -> bool:
    """Record how an attempt ended. False when the lease was lost (another worker owns it now)."""
    now = utcnow()
    values: dict[str, Any] = {
        "status": outcome.value,
        "lease_owner": None,
        "lease_expires_at": None,
        "last_error": error,
        "updated_at": now,
    }
    if outcome == EventStatus.DONE or outcome == EventStatus.DEAD:
        values["handled_at"] = now
    if outcome == EventStatus.RETRY:
        values["next_attempt_at"] = next_attempt_at or now
    result = await session.execute(
        update(InboxEvent)
        .where(
            InboxEvent.id == event.id,
            InboxEvent.lease_owner == worker_id,
            InboxEvent.status == EventStatus.RUNNING.value,
            # The same worker may have re-claimed it after its lease lapsed: only the current
            # attempt may close the event.
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
            outcome=outcome.value if owned else "lost",
            error=error if owned else (error or "lease lost before the attempt finished"),
            outbound_calls=outbound_calls or None,
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
        load_only(InboxEvent.id, InboxEvent.source, InboxEvent.type, InboxEvent.last_error,
                  InboxEvent.handled_at, InboxEvent.attempts)
    )
    return list((await session.execute(stmt)).scalars())


async def flow_stats(session: AsyncSession, since: datetime) -> list[dict[str, Any]]:
    """Per (source, type): last success, and attempts that succeeded or failed since `since`."""
    success = EventAttempt.outcome == EventStatus.DONE.value
    failure = EventAttempt.outcome.in_(
        [EventStatus.RETRY.value, EventStatus.DEAD.value, "lost"]
    )
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


async def delete_all(session: AsyncSession) -> None:
    """Tests and `wizesync events purge` only."""
    await session.execute(delete(EventAttempt))
    await session.execute(delete(InboxEvent))
