"""Worker heartbeats: how /ready knows a worker is alive and how ops see who holds what."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from wizesync.db.base import utcnow
from wizesync.db.models import WorkerHeartbeat


async def beat(
    session: AsyncSession, *, worker_id: str, hostname: str, pid: int, in_flight: int
) -> None:
    now = utcnow()
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = dialect_insert(WorkerHeartbeat).values(
        worker_id=worker_id,
        hostname=hostname,
        pid=pid,
        started_at=now,
        last_seen_at=now,
        in_flight=in_flight,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["worker_id"],
        set_={"last_seen_at": now, "in_flight": in_flight, "stopped_at": None},
    )
    await session.execute(stmt)


async def stopped(session: AsyncSession, *, worker_id: str) -> None:
    await session.execute(
        update(WorkerHeartbeat)
        .where(WorkerHeartbeat.worker_id == worker_id)
        .values(stopped_at=utcnow(), in_flight=0)
    )


async def latest_beat(session: AsyncSession) -> datetime | None:
    """The freshest heartbeat of any running worker."""
    stmt = select(func.max(WorkerHeartbeat.last_seen_at)).where(
        WorkerHeartbeat.stopped_at.is_(None)
    )
    value = (await session.execute(stmt)).scalar_one_or_none()
    if isinstance(value, str):  # SQLite's max() over text
        from datetime import UTC

        value = datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value


async def latest_beat_of_host(session: AsyncSession, hostname: str) -> datetime | None:
    """The freshest heartbeat of a running worker on `hostname` (a container's healthcheck)."""
    stmt = select(func.max(WorkerHeartbeat.last_seen_at)).where(
        WorkerHeartbeat.stopped_at.is_(None), WorkerHeartbeat.hostname == hostname
    )
    value = (await session.execute(stmt)).scalar_one_or_none()
    if isinstance(value, str):  # SQLite's max() over text
        from datetime import UTC

        value = datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value
