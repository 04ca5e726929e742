"""SQL for `sync_orders`: one record per Wizehire order holding every step's result.

Writers change only the columns they own (`set_fields` is a column-level UPDATE), so the order
flow and the payment flow can touch one record without overwriting each other's work. `lock=True`
takes a row lock on PostgreSQL (`SELECT ... FOR UPDATE`); SQLite transactions begin IMMEDIATE
(see `db.engine`), which serialises writers database-wide anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from wizesync.db.base import utcnow
from wizesync.db.sync_models import SyncOrder

# Wizehire's order statuses, in the only direction they move: an older event never undoes
# a newer one (`paid` is not set back to `pending`, nothing leaves `cancelled`).
_STATUS_RANK = {"pending": 0, "paid": 1, "cancelled": 2}
EVENT_AT_KEY = "_event_at"  # inside order_snapshot: when Wizehire sent the snapshot


class OrderFacts(Protocol):
    """What a sync record is made from: a Wizehire order as its event carried it (the Wizehire
    event schema's `Order` is one; storage does not import the client's schemas)."""

    @property
    def id(self) -> str: ...
    @property
    def account_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def amount(self) -> Decimal: ...

    def model_dump(self, *, mode: str) -> dict[str, Any]:
        """The whole order as JSON-ready values: the stored snapshot."""
        ...


async def get(session: AsyncSession, sync_order_id: int, *, lock: bool = False) -> SyncOrder | None:
    stmt = select(SyncOrder).where(SyncOrder.id == sync_order_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_by_wizehire_id(
    session: AsyncSession, wizehire_order_id: str, *, lock: bool = False
) -> SyncOrder | None:
    stmt = select(SyncOrder).where(SyncOrder.wizehire_order_id == wizehire_order_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_by_ghl_order(
    session: AsyncSession, location_id: str, ghl_order_id: str, *, lock: bool = False
) -> SyncOrder | None:
    stmt = select(SyncOrder).where(
        SyncOrder.ghl_location_id == location_id, SyncOrder.ghl_order_id == ghl_order_id
    )
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def get_by_ghl_invoice(
    session: AsyncSession, location_id: str, ghl_invoice_id: str, *, lock: bool = False
) -> SyncOrder | None:
    stmt = select(SyncOrder).where(
        SyncOrder.ghl_location_id == location_id, SyncOrder.ghl_invoice_id == ghl_invoice_id
    )
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def ghl_orders_claimed(
    session: AsyncSession, location_id: str, ghl_order_ids: Sequence[str], *, except_id: int
) -> set[str]:
    """Which of these GHL orders another Wizehire order already owns (one query)."""
    return await _owned_by_others(
        session, SyncOrder.ghl_order_id, location_id, ghl_order_ids, except_id
    )


async def ghl_invoices_owned(
    session: AsyncSession, location_id: str, ghl_invoice_ids: Sequence[str], *, except_id: int
) -> set[str]:
    """Which of these GHL invoices are another Wizehire order's (one query)."""
    return await _owned_by_others(
        session, SyncOrder.ghl_invoice_id, location_id, ghl_invoice_ids, except_id
    )


async def _owned_by_others(
    session: AsyncSession, column: Any, location_id: str, ids: Sequence[str], except_id: int
) -> set[str]:
    if not ids:
        return set()
    stmt = select(column).where(
        SyncOrder.ghl_location_id == location_id,
        column.in_(list(ids)),
        SyncOrder.id != except_id,
    )
    return {v for v in (await session.execute(stmt)).scalars() if v}


async def create_or_update_from_order(
    session: AsyncSession, order: OrderFacts, *, event_at: datetime | None = None
) -> SyncOrder:
    """The order's sync record, created on first sight, else refreshed from the event.

    The snapshot is replaced only by an event at least as new as the stored one, and the status
    only moves forward (`_STATUS_RANK`): duplicates and late deliveries change nothing. Returns the
    row locked (PostgreSQL) for the rest of the caller's transaction.
    """
    snapshot = order.model_dump(mode="json")
    if event_at is not None:
        snapshot[EVENT_AT_KEY] = event_at.isoformat()
    row = await get_by_wizehire_id(session, order.id, lock=True)
    if row is None:
        row = SyncOrder(
            wizehire_order_id=order.id,
            account_id=order.account_id,
            wizehire_status=order.status,
            order_snapshot=snapshot,
            currency=order.currency,
            amount=order.amount,
        )
        try:
            async with session.begin_nested():
                session.add(row)
                await session.flush()
            return row
        except IntegrityError:
            # Another transaction created it between our read and insert: use theirs.
            row = await get_by_wizehire_id(session, order.id, lock=True)
            assert row is not None
    if _is_newer(row.order_snapshot, event_at):
        row.order_snapshot = snapshot
        row.account_id = order.account_id
        row.currency = order.currency
        row.amount = order.amount
    if _STATUS_RANK.get(order.status, 0) > _STATUS_RANK.get(row.wizehire_status, 0):
        row.wizehire_status = order.status
    await session.flush()
    return row


def _is_newer(stored: dict[str, Any] | None, event_at: datetime | None) -> bool:
    if event_at is None or not stored or not stored.get(EVENT_AT_KEY):
        return True
    try:
        return event_at >= datetime.fromisoformat(stored[EVENT_AT_KEY])
    except (TypeError, ValueError):
        return True


async def set_fields(session: AsyncSession, sync_order_id: int, **values: Any) -> None:
    """Store one step's result: an UPDATE of exactly these columns (and `updated_at`)."""
    if not values:
        return
    unknown = set(values) - set(SyncOrder.__table__.columns.keys())
    if unknown:
        raise ValueError(f"sync_orders has no column(s) {sorted(unknown)}")
    await session.execute(
        update(SyncOrder)
        .where(SyncOrder.id == sync_order_id)
        .values(**values, updated_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )


async def link_ghl_order(
    session: AsyncSession, sync_order_id: int, ghl_order_id: str, *, source: str
) -> None:
    """Keep `ghl_order_id` on the record unless it already has one: a conditional UPDATE, so
    another writer's id is never overwritten. IntegrityError when another record has the order
    (one GHL order belongs to one record: unique index)."""
    await session.execute(
        update(SyncOrder)
        .where(SyncOrder.id == sync_order_id, SyncOrder.ghl_order_id.is_(None))
        .values(ghl_order_id=ghl_order_id, ghl_order_source=source, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
