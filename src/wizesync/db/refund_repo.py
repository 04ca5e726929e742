"""Every SQL statement of the refund flow (table `sync_refunds`).

A refund row is written as soon as `refund.requested` arrives (intent first), so a redelivered
event finds it and carries on from the step it reached. Locks: `lock_*` take row locks on
PostgreSQL (`SELECT ... FOR UPDATE`); on SQLite every transaction already began IMMEDIATE (see
`db.engine`), which serialises writers database-wide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from wizesync.db.base import utcnow
from wizesync.db.sync_models import SyncOrder, SyncRefund

# Accepted and waiting for the money to move (GHL's amountRefunded to grow).
OPEN_STATUSES = ("pending", "manual_action_required")


@dataclass(frozen=True, slots=True)
class NewRefund:
    wizehire_refund_id: str
    wizehire_order_id: str
    amount: Decimal
    currency: str
    reason_code: str
    note: str | None
    executor: str


def _postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def create_once(session: AsyncSession, refund: NewRefund) -> SyncRefund:
    """The refund's row: inserted on first sight, the stored one on every later delivery
    (the first request's amount and currency stay authoritative)."""
    now = utcnow()
    values: dict[str, Any] = {
        "wizehire_refund_id": refund.wizehire_refund_id,
        "wizehire_order_id": refund.wizehire_order_id,
        "amount": refund.amount,
        "currency": refund.currency,
        "reason_code": refund.reason_code,
        "note": refund.note,
        "executor": refund.executor,
        "status": "pending",
        "created_at": now,
        "updated_at": now,
    }
    insert = pg_insert if _postgres(session) else sqlite_insert
    stmt = (
        insert(SyncRefund)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["wizehire_refund_id"])
    )
    await session.execute(stmt)
    stored = await lock_by_wizehire_id(session, refund.wizehire_refund_id)
    assert stored is not None  # inserted above or already there
    return stored


async def get_by_wizehire_id(session: AsyncSession, wizehire_refund_id: str) -> SyncRefund | None:
    stmt = select(SyncRefund).where(SyncRefund.wizehire_refund_id == wizehire_refund_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock_by_wizehire_id(session: AsyncSession, wizehire_refund_id: str) -> SyncRefund | None:
    """The refund's row, read fresh and locked until the transaction ends."""
    return await _locked(session, SyncRefund.wizehire_refund_id == wizehire_refund_id)


async def lock(session: AsyncSession, refund_id: int) -> SyncRefund | None:
    return await _locked(session, SyncRefund.id == refund_id)


async def _locked(session: AsyncSession, where: Any) -> SyncRefund | None:
    """The one row `where` selects, read fresh; locked (PostgreSQL) until the transaction ends
    (SQLite's BEGIN IMMEDIATE already holds the write lock)."""
    stmt = select(SyncRefund).where(where).execution_options(populate_existing=True)
    if _postgres(session):
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_for_order(
    session: AsyncSession,
    wizehire_order_id: str,
    *,
    statuses: Sequence[str] | None = None,
    for_update: bool = False,
) -> list[SyncRefund]:
    """The order's refunds in request order (created_at, then id)."""
    stmt = (
        select(SyncRefund)
        .where(SyncRefund.wizehire_order_id == wizehire_order_id)
        .order_by(SyncRefund.created_at, SyncRefund.id)
        .execution_options(populate_existing=True)
    )
    if statuses is not None:
        stmt = stmt.where(SyncRefund.status.in_(list(statuses)))
    if for_update and _postgres(session):
        stmt = stmt.with_for_update()
    return list((await session.execute(stmt)).scalars())


async def list_accepted_open(
    session: AsyncSession, wizehire_order_id: str, *, for_update: bool = False
) -> list[SyncRefund]:
    """Refunds validated and handed to an executor (a transaction and a baseline chosen) whose
    money GHL does not show yet, in request order: the open ones, and gateway refunds the
    gateway confirmed (`succeeded`) that GHL's amountRefunded has not caught up with."""
    refunds = await list_for_order(
        session,
        wizehire_order_id,
        statuses=(*OPEN_STATUSES, "succeeded"),
        for_update=for_update,
    )
    return [
        r
        for r in refunds
        if r.ghl_transaction_id
        and r.refunded_baseline is not None
        and (r.status in OPEN_STATUSES or awaiting_ghl(r))
    ]


def awaiting_ghl(refund: SyncRefund) -> bool:
    """The gateway refunded it; GHL's amountRefunded does not show it yet."""
    return (
        refund.status == "succeeded"
        and refund.gateway_refund_id is not None
        and refund.ghl_seen_at is None
    )


async def wizehire_order_id_of(session: AsyncSession, sync_order_id: int) -> str | None:
    """The Wizehire order id of a sync record (refunds are keyed by it)."""
    stmt = select(SyncOrder.wizehire_order_id).where(SyncOrder.id == sync_order_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def set_fields(session: AsyncSession, refund_id: int, **values: Any) -> None:
    """Write step results on a refund (status, transaction, baseline, notified_at, ...)."""
    allowed = set(SyncRefund.__table__.columns.keys()) - {"id", "wizehire_refund_id"}
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"not sync_refunds columns: {sorted(unknown)}")
    values.setdefault("updated_at", utcnow())
    await session.execute(update(SyncRefund).where(SyncRefund.id == refund_id).values(**values))


async def sync_orders_with_unsent_refunds(
    session: AsyncSession, location_id: str, *, within: timedelta = timedelta(days=30)
) -> list[int]:
    """Sync records of the location with a decided refund whose status Wizehire has not
    acknowledged (its PATCH failed after the decision was stored, e.g. a `succeeded` on an
    order now fully refunded, which nothing else would look at again): the poller refreshes
    them so `settle_pending_refunds` sends it again. Only refunds changed `within` the window
    are looked at, so the scan stays small as refunds pile up. Also the records with a gateway
    refund GHL does not show yet (until it does, or Slack was told it is late)."""
    stmt = (
        select(SyncOrder.id, SyncRefund.status, SyncRefund.last_synced_state)
        .join(SyncRefund, SyncRefund.wizehire_order_id == SyncOrder.wizehire_order_id)
        .where(
            SyncOrder.ghl_location_id == location_id,
            SyncRefund.status != "pending",
            SyncRefund.updated_at >= utcnow() - within,
        )
    )
    rows = (await session.execute(stmt)).all()
    unsent = {sync_id for sync_id, status, sent in rows if (sent or {}).get("status") != status}
    # Gateway refunds GHL has not shown yet: refreshed until it does, or Slack was told.
    awaiting = (
        select(SyncOrder.id)
        .join(SyncRefund, SyncRefund.wizehire_order_id == SyncOrder.wizehire_order_id)
        .where(
            SyncOrder.ghl_location_id == location_id,
            SyncRefund.status == "succeeded",
            SyncRefund.gateway_refund_id.is_not(None),
            SyncRefund.ghl_seen_at.is_(None),
            SyncRefund.ghl_catchup_notified_at.is_(None),
        )
    )
    unsent |= set((await session.execute(awaiting)).scalars())
    return sorted(unsent)
