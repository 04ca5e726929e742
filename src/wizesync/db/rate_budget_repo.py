"""SQL for the GHL request budgets: `ghl_rate_budgets` (one row per location) and
`ghl_rate_slots` (its reserved requests), for `ghl/ratelimit.py`.

`lock_budget` takes a row lock on PostgreSQL (`SELECT ... FOR UPDATE`); on SQLite every
transaction already began IMMEDIATE (see `db.engine`), which serialises writers database-wide.
Either way the caller holds the lock until its transaction ends.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from wizesync.db.base import utcnow
from wizesync.db.ghl_models import GhlRateBudget, GhlRateSlot


def _postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _insert(session: AsyncSession) -> Any:
    return pg_insert if _postgres(session) else sqlite_insert


async def clock(session: AsyncSession) -> float:
    """Now, in epoch seconds: PostgreSQL's clock (one clock for every host), else ours."""
    if _postgres(session):
        value = await session.execute(select(func.extract("epoch", func.clock_timestamp())))
        return float(value.scalar_one())
    return time.time()


async def lock_budget(session: AsyncSession, location_id: str) -> tuple[GhlRateBudget, float]:
    """The location's budget row (created on first use), locked for this transaction, and the
    time right after the lock was granted (see `clock`), in the same round trip."""
    postgres = _postgres(session)
    locked = select(GhlRateBudget).where(GhlRateBudget.location_id == location_id)
    if postgres:
        # The clock is read by the outer query, above the subquery's row lock. Read beside the
        # locked row it would be computed before the wait whenever the holder committed without
        # changing the row (no re-check of the row then): a time older than the lock, which
        # set every slot and answer of this transaction early by the wait, so a later window's
        # first slot went before GHL's window had ended (a 429 under load).
        sub = locked.with_for_update().subquery()
        stmt = select(
            aliased(GhlRateBudget, sub), func.extract("epoch", func.clock_timestamp())
        ).execution_options(populate_existing=True)
    else:
        stmt = locked.execution_options(populate_existing=True)
    row = (await session.execute(stmt)).one_or_none()
    if row is None:
        await session.execute(
            _insert(session)(GhlRateBudget)
            .values(location_id=location_id, next_seq=0, last_go_at=0.0, updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["location_id"])
        )
        row = (await session.execute(stmt)).one()
    return row[0], float(row[1]) if postgres else time.time()


async def latest_slot_at(session: AsyncSession, location_id: str, upto_seq: int) -> float | None:
    """The latest time of any slot up to `upto_seq`: the request `limit` places back."""
    stmt = select(func.max(GhlRateSlot.at)).where(
        GhlRateSlot.location_id == location_id, GhlRateSlot.seq <= upto_seq
    )
    value = (await session.execute(stmt)).scalar_one_or_none()
    return None if value is None else float(value)


async def add_slots(
    session: AsyncSession,
    location_id: str,
    first_seq: int,
    times: Sequence[float],
    *,
    counted_until: float | None = None,
) -> None:
    """Slots from `first_seq` on, each going at its time; counted (`at`) until then, or until
    `counted_until` for slots reserved ahead that may be sent any time before it."""
    await session.execute(
        insert(GhlRateSlot),
        [
            {
                "location_id": location_id,
                "seq": first_seq + i,
                "go_at": go,
                "at": go if counted_until is None else max(go, counted_until),
            }
            for i, go in enumerate(times)
        ],
    )


async def add_slot_sent_now(session: AsyncSession, location_id: str, seq: int, go: float) -> None:
    """The slot `seq`, going at `go` or, if the clock has passed it, now: the last statement of
    a reservation, so the time recorded is as close as can be to when the request leaves (the
    statements before it took time, and a slot recorded early lets a later window's request
    bunch with it)."""
    if _postgres(session):
        at: Any = func.greatest(go, func.extract("epoch", func.clock_timestamp()))
    else:
        at = max(go, time.time())
    await session.execute(
        insert(GhlRateSlot).values(location_id=location_id, seq=seq, go_at=at, at=at)
    )


async def extend_slots(session: AsyncSession, location_id: str, answered: dict[int, float]) -> None:
    """Requests answered at these times: each slot counts until then (it may have reached GHL
    late). Never moves a slot earlier."""
    table = GhlRateSlot.__table__  # Core executemany: one UPDATE statement, many rows
    assert isinstance(table, Table)
    stmt = (
        update(table)
        .where(
            table.c.location_id == bindparam("b_location"),
            table.c.seq == bindparam("b_seq"),
            table.c.at < bindparam("b_at"),
        )
        .values(at=bindparam("b_at"))
    )
    await session.execute(
        stmt,
        [{"b_location": location_id, "b_seq": seq, "b_at": at} for seq, at in answered.items()],
    )


async def settle_slots(session: AsyncSession, location_id: str, answered: dict[int, float]) -> None:
    """Slots reserved ahead (counted until the end of their lease) whose requests were answered
    at these times: they count until then, earlier or later (GHL counted them before)."""
    table = GhlRateSlot.__table__
    assert isinstance(table, Table)
    stmt = (
        update(table)
        .where(table.c.location_id == bindparam("b_location"), table.c.seq == bindparam("b_seq"))
        .values(at=bindparam("b_at"))
    )
    await session.execute(
        stmt,
        [{"b_location": location_id, "b_seq": seq, "b_at": at} for seq, at in answered.items()],
    )


async def release_slots(session: AsyncSession, location_id: str, seqs: Sequence[int]) -> None:
    """Slots reserved ahead and never sent: they stop counting."""
    await session.execute(
        delete(GhlRateSlot).where(
            GhlRateSlot.location_id == location_id, GhlRateSlot.seq.in_(list(seqs))
        )
    )


async def count_slots_in_window(
    session: AsyncSession, location_id: str, since: float, until: float
) -> int:
    """Requests sent by `until` whose answer came after `since`: what GHL may still count."""
    stmt = (
        select(func.count())
        .select_from(GhlRateSlot)
        .where(
            GhlRateSlot.location_id == location_id,
            GhlRateSlot.at > since,
            GhlRateSlot.go_at <= until,
        )
    )
    return int((await session.execute(stmt)).scalar_one())


async def prune_slots(session: AsyncSession, location_id: str, below_seq: int) -> None:
    await session.execute(
        delete(GhlRateSlot).where(
            GhlRateSlot.location_id == location_id, GhlRateSlot.seq < below_seq
        )
    )


async def update_budget(session: AsyncSession, location_id: str, **values: Any) -> None:
    await session.execute(
        update(GhlRateBudget)
        .where(GhlRateBudget.location_id == location_id)
        .values(updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )


async def get_budgets(session: AsyncSession) -> dict[str, GhlRateBudget]:
    rows = (await session.execute(select(GhlRateBudget))).scalars()
    return {row.location_id: row for row in rows}


async def slot_times(session: AsyncSession, location_id: str) -> list[float]:
    """Every kept slot's time, oldest first (for status and for tests of the invariant)."""
    stmt = (
        select(GhlRateSlot.at)
        .where(GhlRateSlot.location_id == location_id)
        .order_by(GhlRateSlot.seq)
    )
    return [float(v) for v in (await session.execute(stmt)).scalars()]
