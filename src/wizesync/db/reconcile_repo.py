"""SQL of reconciliation: runs (create, lease, progress, finish), their items, and the GHL orders a
running run has read (`reconciliation_ghl_orders`, its working set).

Leases are one conditional UPDATE, like the poller's: PostgreSQL re-checks the WHERE on the locked
row and SQLite writes one at a time, so of two processes racing for a run exactly one wins.
A scheduled run is one INSERT guarded by the unique `fire_time`: the replica whose insert lands
runs it, the others see no row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    Table,
    and_,
    any_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from wizesync.db.base import utcnow
from wizesync.db.reconcile_models import (
    CATEGORIES,
    PENDING,
    ReconciliationGhlOrder,
    ReconciliationItem,
    ReconciliationRun,
)
from wizesync.db.sync_models import SyncOrder


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _table(model: Any) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


_ITEM_DEFAULTS: dict[str, Any] = {
    "wizehire_order_id": None,
    "ghl_order_id": None,
    "ghl_location_id": None,
    "wizehire": None,
    "ghl": None,
    "detail": "",
    "healed": False,
}
_STAGED_DEFAULTS: dict[str, Any] = {
    "invoice_id": None,
    "created_at": None,
    "currency": None,
    "amount": None,
    "amount_refunded": 0,
    "payment_status": None,
    "fulfilled": False,
    "mapped": False,
    "transactions": None,
    "claimed": False,
}


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(CATEGORIES, 0)


# --- runs: reading -------------------------------------------------------------------------------


async def get_run(session: AsyncSession, run_id: int) -> ReconciliationRun | None:
    stmt = select(ReconciliationRun).where(ReconciliationRun.id == run_id)
    stmt = stmt.execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_runs(session: AsyncSession, limit: int = 50) -> list[ReconciliationRun]:
    """Newest first."""
    stmt = select(ReconciliationRun).order_by(ReconciliationRun.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def last_finished_run(session: AsyncSession) -> ReconciliationRun | None:
    """The run that finished most recently with status `done`."""
    stmt = (
        select(ReconciliationRun)
        .where(ReconciliationRun.status == "done")
        .order_by(ReconciliationRun.finished_at.desc(), ReconciliationRun.id.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def latest_fire_time(session: AsyncSession) -> datetime | None:
    """The newest fire time a scheduled run was created for (whatever became of it)."""
    return (await session.execute(select(func.max(ReconciliationRun.fire_time)))).scalar()


# --- runs: writing -------------------------------------------------------------------------------


async def create_run(
    session: AsyncSession,
    *,
    trigger: str,
    since: datetime,
    until: datetime,
    heal: bool,
    owner: str,
    lease_seconds: float,
    fire_time: datetime | None = None,
) -> int | None:
    """Insert a running run leased to `owner`; its id, or None when another replica already
    created the run for this `fire_time`."""
    now = utcnow()
    stmt = (
        _insert(session)(ReconciliationRun)
        .values(
            status="running",
            trigger=trigger,
            fire_time=fire_time,
            since=since,
            until=until,
            heal=heal,
            started_at=now,
            counts=empty_counts(),
            state=None,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
        )
        .on_conflict_do_nothing(index_elements=["fire_time"])
        .returning(ReconciliationRun.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def claim_abandoned_run(
    session: AsyncSession, *, owner: str, lease_seconds: float
) -> ReconciliationRun | None:
    """Take over the oldest running run whose lease expired (its process died); None if none."""
    now = utcnow()
    candidates = (
        select(ReconciliationRun.id)
        .where(ReconciliationRun.status == "running", ReconciliationRun.lease_expires_at < now)
        .order_by(ReconciliationRun.id)
        .limit(5)
    )
    for run_id in list((await session.execute(candidates)).scalars()):
        result = await session.execute(
            update(ReconciliationRun)
            .where(
                ReconciliationRun.id == run_id,
                ReconciliationRun.status == "running",
                ReconciliationRun.lease_expires_at < now,
            )
            .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) == 1:
            return await get_run(session, run_id)
    return None


async def extend_lease(
    session: AsyncSession, run_id: int, *, owner: str, lease_seconds: float
) -> bool:
    """Push the lease on; False when the run is no longer ours (or no longer running)."""
    result = await session.execute(
        update(ReconciliationRun)
        .where(
            ReconciliationRun.id == run_id,
            ReconciliationRun.lease_owner == owner,
            ReconciliationRun.status == "running",
        )
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


async def save_progress(
    session: AsyncSession,
    run_id: int,
    *,
    owner: str,
    state: dict[str, Any],
    counts: dict[str, int],
    lease_seconds: float,
) -> bool:
    """Store where the run is (and extend its lease) in the caller's transaction, with the items
    of the same step; False when the run is no longer ours."""
    result = await session.execute(
        update(ReconciliationRun)
        .where(
            ReconciliationRun.id == run_id,
            ReconciliationRun.lease_owner == owner,
            ReconciliationRun.status == "running",
        )
        .values(
            state=state, counts=counts, lease_expires_at=utcnow() + timedelta(seconds=lease_seconds)
        )
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


async def finish_run(
    session: AsyncSession,
    run_id: int,
    *,
    owner: str | None,
    status: str,
    counts: dict[str, int] | None = None,
    error: str | None = None,
) -> bool:
    """Mark the run done or failed and drop its lease (only ours, unless `owner` is None: an
    operator or the start-up sweep failing a run whose process is gone)."""
    values: dict[str, Any] = {
        "status": status,
        "finished_at": utcnow(),
        "error": error,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if counts is not None:
        values["counts"] = counts
    stmt = update(ReconciliationRun).where(
        ReconciliationRun.id == run_id, ReconciliationRun.status == "running"
    )
    if owner is not None:
        stmt = stmt.where(ReconciliationRun.lease_owner == owner)
    result = await session.execute(
        stmt.values(**values).execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


# --- items ---------------------------------------------------------------------------------------


async def add_items(session: AsyncSession, run_id: int, items: Sequence[dict[str, Any]]) -> int:
    """Insert items (dicts of ReconciliationItem columns with `order_key`); an item already
    written for that order in this run is kept. The number inserted.

    One executemany of a cached statement (batched into multi-row INSERTs by the driver layer):
    a `.values([...])` of a page's rows is compiled afresh each time, which cost more CPU than
    the run's comparison itself."""
    if not items:
        return 0
    table = _table(ReconciliationItem)
    rows = [{**_ITEM_DEFAULTS, **item, "run_id": run_id} for item in items]
    stmt = (
        _insert(session)(table)
        .on_conflict_do_nothing(index_elements=["run_id", "order_key"])
        .returning(table.c.id)
    )
    return len((await session.execute(stmt, rows)).all())


async def list_items(
    session: AsyncSession,
    run_id: int,
    *,
    category: str | None = None,
    after_id: int | None = None,
    limit: int = 1000,
) -> list[ReconciliationItem]:
    """Items of a run ordered by id, from after `after_id` (settled ones: see `PENDING`)."""
    stmt = select(ReconciliationItem).where(ReconciliationItem.run_id == run_id)
    if category is not None:
        stmt = stmt.where(ReconciliationItem.category == category)
    else:
        stmt = stmt.where(ReconciliationItem.category != PENDING)
    if after_id is not None:
        stmt = stmt.where(ReconciliationItem.id > after_id)
    stmt = stmt.order_by(ReconciliationItem.id).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def count_items(session: AsyncSession, run_id: int) -> dict[str, int]:
    """{category: n} for every category (zeros included), counted from the settled items."""
    stmt = (
        select(ReconciliationItem.category, func.count())
        .where(ReconciliationItem.run_id == run_id, ReconciliationItem.category != PENDING)
        .group_by(ReconciliationItem.category)
    )
    counts = empty_counts()
    for category, n in (await session.execute(stmt)).all():
        counts[category] = int(n)
    return counts


async def worst_items(
    session: AsyncSession, run_id: int, *, limit: int = 5
) -> list[ReconciliationItem]:
    """The items most in need of a person: first by the contract's category order (an order
    missing on one side before a figure that differs), then oldest written first."""
    rank = case({c: i for i, c in enumerate(CATEGORIES)}, value=ReconciliationItem.category)
    stmt = (
        select(ReconciliationItem)
        .where(
            ReconciliationItem.run_id == run_id,
            ReconciliationItem.category.not_in(("matched", PENDING)),
        )
        .order_by(rank, ReconciliationItem.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


# --- the run's working set of GHL orders ---------------------------------------------------------


async def stage_ghl_orders(
    session: AsyncSession, run_id: int, rows: Sequence[dict[str, Any]]
) -> None:
    """Insert or refresh GHL orders read by the run (re-reading a page after a resume is
    harmless). `rows` are dicts of ReconciliationGhlOrder columns; one executemany (see
    `add_items`)."""
    if not rows:
        return
    table = _table(ReconciliationGhlOrder)
    stmt = _insert(session)(table)
    refreshed = (
        "invoice_id",
        "created_at",
        "currency",
        "amount",
        "payment_status",
        "fulfilled",
        "mapped",
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["run_id", "location_id", "ghl_order_id"],
        set_={name: getattr(stmt.excluded, name) for name in refreshed},
    )
    await session.execute(stmt, [{**_STAGED_DEFAULTS, **row, "run_id": run_id} for row in rows])


async def set_ghl_order_payments(session: AsyncSession, payments: Sequence[dict[str, Any]]) -> None:
    """Write staged orders' transactions as read so far: dicts of `id` and `transactions`, one
    executemany by primary key."""
    if payments:
        table = _table(ReconciliationGhlOrder)
        stmt = (
            update(table)
            .where(table.c.id == bindparam("staged_id"))
            .values(transactions=bindparam("new_transactions"))
        )
        await session.execute(
            stmt,
            [{"staged_id": p["id"], "new_transactions": p["transactions"]} for p in payments],
        )


async def staged_for_transactions(
    session: AsyncSession,
    run_id: int,
    location_id: str,
    *,
    order_ids: Sequence[str] = (),
    invoice_ids: Sequence[str] = (),
) -> list[ReconciliationGhlOrder]:
    """Staged orders that transactions point at, by order id or by the invoice they came from."""
    out: dict[int, ReconciliationGhlOrder] = {}
    base = select(ReconciliationGhlOrder).where(
        ReconciliationGhlOrder.run_id == run_id,
        ReconciliationGhlOrder.location_id == location_id,
    )
    if order_ids:
        stmt = base.where(ReconciliationGhlOrder.ghl_order_id.in_(list(order_ids)))
        out.update((row.id, row) for row in (await session.execute(stmt)).scalars())
    if invoice_ids:
        stmt = base.where(ReconciliationGhlOrder.invoice_id.in_(list(invoice_ids)))
        out.update((row.id, row) for row in (await session.execute(stmt)).scalars())
    return list(out.values())


async def staged_by_order_ids(
    session: AsyncSession, run_id: int, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], ReconciliationGhlOrder]:
    """Staged orders by (location id, GHL order id)."""
    out: dict[tuple[str, str], ReconciliationGhlOrder] = {}
    by_location: dict[str, list[str]] = {}
    for location_id, order_id in keys:
        by_location.setdefault(location_id, []).append(order_id)
    for location_id, order_ids in by_location.items():
        stmt = select(ReconciliationGhlOrder).where(
            ReconciliationGhlOrder.run_id == run_id,
            ReconciliationGhlOrder.location_id == location_id,
            ReconciliationGhlOrder.ghl_order_id.in_(order_ids),
        )
        for row in (await session.execute(stmt)).scalars():
            out[(row.location_id, row.ghl_order_id)] = row
    return out


async def staged_by_invoice_ids(
    session: AsyncSession, run_id: int, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], ReconciliationGhlOrder]:
    """Staged orders by (location id, the invoice they came from)."""
    out: dict[tuple[str, str], ReconciliationGhlOrder] = {}
    by_location: dict[str, list[str]] = {}
    for location_id, invoice_id in keys:
        by_location.setdefault(location_id, []).append(invoice_id)
    for location_id, invoice_ids in by_location.items():
        stmt = select(ReconciliationGhlOrder).where(
            ReconciliationGhlOrder.run_id == run_id,
            ReconciliationGhlOrder.location_id == location_id,
            ReconciliationGhlOrder.invoice_id.in_(invoice_ids),
        )
        for row in (await session.execute(stmt)).scalars():
            if row.invoice_id is not None:
                out[(row.location_id, row.invoice_id)] = row
    return out


async def claim_staged(session: AsyncSession, ids: Sequence[int]) -> None:
    """Mark staged orders as paired with a Wizehire order."""
    if ids:
        await session.execute(
            update(ReconciliationGhlOrder)
            .where(ReconciliationGhlOrder.id.in_(list(ids)))
            .values(claimed=True)
            .execution_options(synchronize_session=False)
        )


async def unclaimed_staged(
    session: AsyncSession, run_id: int, *, after_id: int, limit: int
) -> list[ReconciliationGhlOrder]:
    """Staged orders no Wizehire order of the window paired with, by id."""
    stmt = (
        select(ReconciliationGhlOrder)
        .where(
            ReconciliationGhlOrder.run_id == run_id,
            ReconciliationGhlOrder.claimed.is_(False),
            ReconciliationGhlOrder.id > after_id,
        )
        .order_by(ReconciliationGhlOrder.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def drop_staged(session: AsyncSession, run_id: int) -> None:
    await session.execute(
        delete(ReconciliationGhlOrder).where(ReconciliationGhlOrder.run_id == run_id)
    )


async def existing_item_keys(
    session: AsyncSession, run_id: int, order_keys: Sequence[str]
) -> set[str]:
    """Which of these orders already have an item in the run (a resumed or re-read page)."""
    if not order_keys:
        return set()
    keys: ColumnElement[bool] = ReconciliationItem.order_key.in_(list(order_keys))
    if session.get_bind().dialect.name == "postgresql":
        # One array, not one parameter per key: once asyncpg's prepared statement goes generic,
        # PostgreSQL reads `IN ($2, ..., $201)` as "most rows" and scanned the run's items on
        # the other index (a second per page at 100,000 orders), while `= ANY($2)` stays on
        # the unique (run, order key) index.
        keys = ReconciliationItem.order_key == any_(
            bindparam("order_keys", list(order_keys), type_=ARRAY(String))
        )
    stmt = select(ReconciliationItem.order_key).where(ReconciliationItem.run_id == run_id, keys)
    return set((await session.execute(stmt)).scalars())


async def pending_to_settle(
    session: AsyncSession,
    run_id: int,
    *,
    everything: bool,
    read_locations: Sequence[str] = (),
    reading: tuple[str, datetime] | None = None,
    limit: int,
) -> list[ReconciliationItem]:
    """Pending items, oldest first: all of them (`everything`), or those whose GHL order's
    transactions are all read: its location's list is read to the end (`read_locations`), or
    it is in the location being read and was created at or after `reading`'s time (a pending
    item's `ghl` holds its GHL order's `created_at`). Not a join with the working set:
    PostgreSQL, without statistics of tables filled a moment ago, planned that as one scan of
    the working set per pending item."""
    item = ReconciliationItem
    stmt = select(item).where(item.run_id == run_id, item.category == PENDING)
    if not everything:
        complete: list[ColumnElement[bool]] = []
        if read_locations:
            complete.append(item.ghl_location_id.in_(list(read_locations)))
        if reading is not None:
            created = item.ghl["created_at"].as_string()
            complete.append(and_(item.ghl_location_id == reading[0], created >= _iso(reading[1])))
        if not complete:
            return []
        stmt = stmt.where(or_(*complete))
    return list((await session.execute(stmt.order_by(item.id).limit(limit))).scalars())


def pending_ghl(created_at: datetime | None) -> dict[str, Any]:
    """What a pending item keeps of its GHL order (for `pending_to_settle`)."""
    return {"created_at": _iso(created_at) if created_at is not None else None}


def _iso(moment: datetime) -> str:
    """UTC, one fixed width: these strings compare as the times do."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def analyze_working_set(session: AsyncSession) -> None:
    """Give PostgreSQL's planner the freshly read working set's statistics: without them it
    looks orders up by (run, location) on the invoice index and filters, one scan of the whole
    set per page. (SQLite picks the unique index by its own rules.)"""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text(f"ANALYZE {_table(ReconciliationGhlOrder).name}"))


async def settle_items(session: AsyncSession, settled: Sequence[dict[str, Any]]) -> None:
    """Give pending items their category and figures: dicts of `id` plus `category`,
    `wizehire`, `ghl`, `detail`, `healed`; one executemany by primary key."""
    if settled:
        table = _table(ReconciliationItem)
        stmt = (
            update(table)
            .where(table.c.id == bindparam("item_id"), table.c.category == PENDING)
            .values(
                category=bindparam("new_category"),
                wizehire=bindparam("new_wizehire"),
                ghl=bindparam("new_ghl"),
                detail=bindparam("new_detail"),
                healed=bindparam("new_healed"),
            )
        )
        await session.execute(
            stmt,
            [
                {
                    "item_id": s["id"],
                    "new_category": s["category"],
                    "new_wizehire": s["wizehire"],
                    "new_ghl": s["ghl"],
                    "new_detail": s["detail"],
                    "new_healed": s["healed"],
                }
                for s in settled
            ],
        )


# --- the sync records a run matches through (indexed look-ups, a page at a time) ----------------


@dataclass(frozen=True)
class SyncLink:
    """What a run needs of a sync record: where the sync put the order in GHL."""

    wizehire_order_id: str
    ghl_location_id: str | None
    ghl_order_id: str | None
    ghl_invoice_id: str | None


async def sync_links_by_wizehire_ids(
    session: AsyncSession, wizehire_order_ids: Sequence[str]
) -> dict[str, SyncLink]:
    """Sync records' GHL links by Wizehire order id (four columns, not the whole record)."""
    if not wizehire_order_ids:
        return {}
    stmt = select(
        SyncOrder.wizehire_order_id,
        SyncOrder.ghl_location_id,
        SyncOrder.ghl_order_id,
        SyncOrder.ghl_invoice_id,
    ).where(SyncOrder.wizehire_order_id.in_(list(wizehire_order_ids)))
    return {row[0]: SyncLink(*row) for row in (await session.execute(stmt)).all()}


async def linked_ghl_orders(
    session: AsyncSession,
    location_id: str,
    *,
    order_ids: Sequence[str] = (),
    invoice_ids: Sequence[str] = (),
) -> tuple[set[str], set[str]]:
    """Of these GHL order ids and invoice ids, those a sync record points to."""
    orders: set[str] = set()
    invoices: set[str] = set()
    if order_ids:
        stmt = select(SyncOrder.ghl_order_id).where(
            SyncOrder.ghl_location_id == location_id, SyncOrder.ghl_order_id.in_(list(order_ids))
        )
        orders = {v for v in (await session.execute(stmt)).scalars() if v}
    if invoice_ids:
        stmt = select(SyncOrder.ghl_invoice_id).where(
            SyncOrder.ghl_location_id == location_id,
            SyncOrder.ghl_invoice_id.in_(list(invoice_ids)),
        )
        invoices = {v for v in (await session.execute(stmt)).scalars() if v}
    return orders, invoices
