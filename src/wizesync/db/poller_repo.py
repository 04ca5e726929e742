"""SQL of the poller (`poller_state`: cursors, counts, the per-location lease), of GHL orders no
sync record knows (`unmatched_ghl_orders`), and the poller's reads of `sync_orders`.

The lease is one conditional UPDATE: PostgreSQL re-checks its WHERE on the locked row and SQLite
writes one at a time (BEGIN IMMEDIATE), so of two processes racing for a location exactly one
sees a row updated.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from wizesync.db.base import utcnow
from wizesync.db.ghl_models import GhlInstallation
from wizesync.db.sync_models import PollerState, SyncOrder, SyncRefund, UnmatchedGhlOrder

# Payment states that can still change without a new transaction (refunds) or with one.
LIVE_PAYMENT_STATUSES = ("pending", "paid", "partially_refunded")
OPEN_REFUND_STATUSES = ("pending", "manual_action_required")


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


# --- which locations -----------------------------------------------------------------------------


async def locations_to_poll(session: AsyncSession, extra: Sequence[str] = ()) -> list[str]:
    """Locations some sync record routes to, plus installed locations (and `extra`, e.g. the
    Private Integration Token's location)."""
    synced = select(SyncOrder.ghl_location_id).where(SyncOrder.ghl_location_id.is_not(None))
    installed = select(GhlInstallation.location_id).where(
        GhlInstallation.location_id.is_not(None), GhlInstallation.uninstalled_at.is_(None)
    )
    found = set((await session.execute(synced.distinct())).scalars())
    found |= set((await session.execute(installed)).scalars())
    found |= set(extra)
    return sorted(loc for loc in found if loc)


# --- poller_state and the lease ------------------------------------------------------------------


async def acquire_lease(
    session: AsyncSession,
    location_id: str,
    *,
    owner: str,
    lease_seconds: float,
    due_before: datetime | None = None,
) -> PollerState | None:
    """Take the location's lease if it is free (or expired, or ours) and the location is due
    (last run at or before `due_before`); the row as it now stands, or None."""
    now = utcnow()
    await session.execute(
        _insert(session)(PollerState)
        .values(location_id=location_id)
        .on_conflict_do_nothing(index_elements=["location_id"])
    )
    conditions = [
        PollerState.location_id == location_id,
        or_(
            PollerState.lease_owner.is_(None),
            PollerState.lease_expires_at.is_(None),
            PollerState.lease_expires_at < now,
            PollerState.lease_owner == owner,
        ),
    ]
    if due_before is not None:
        conditions.append(
            or_(PollerState.last_run_at.is_(None), PollerState.last_run_at <= due_before)
        )
    result = await session.execute(
        update(PollerState)
        .where(and_(*conditions))
        .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    if _rowcount(result) != 1:
        return None
    return await get_state(session, location_id)


async def extend_lease(
    session: AsyncSession, location_id: str, *, owner: str, lease_seconds: float
) -> bool:
    """Push the lease on; False when it is no longer ours (expired and taken)."""
    result = await session.execute(
        update(PollerState)
        .where(PollerState.location_id == location_id, PollerState.lease_owner == owner)
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


async def finish_run(
    session: AsyncSession,
    location_id: str,
    *,
    owner: str,
    started_at: datetime,
    counts: dict[str, Any],
    error: str | None,
    transactions_cursor: datetime | None = None,
    subscriptions_cursor: datetime | None = None,
    seen_transactions: dict[str, Any] | None = None,
) -> bool:
    """Record the run and give the lease back (only if still ours: a run that lost its lease
    records nothing, the new holder's word counts)."""
    values: dict[str, Any] = {
        "last_run_at": started_at,
        "last_counts": counts,
        "last_error": error,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if error is None:
        values["last_success_at"] = utcnow()
    if transactions_cursor is not None:
        values["transactions_cursor"] = transactions_cursor
    if subscriptions_cursor is not None:
        values["subscriptions_cursor"] = subscriptions_cursor
    if seen_transactions is not None:
        values["seen_transactions"] = seen_transactions
    result = await session.execute(
        update(PollerState)
        .where(PollerState.location_id == location_id, PollerState.lease_owner == owner)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


async def release_lease(session: AsyncSession, location_id: str, *, owner: str) -> None:
    await session.execute(
        update(PollerState)
        .where(PollerState.location_id == location_id, PollerState.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )


async def get_state(session: AsyncSession, location_id: str) -> PollerState | None:
    stmt = select(PollerState).where(PollerState.location_id == location_id)
    stmt = stmt.execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_states(session: AsyncSession) -> list[PollerState]:
    return list(
        (await session.execute(select(PollerState).order_by(PollerState.location_id))).scalars()
    )


# --- the sync records the poller re-reads --------------------------------------------------------


async def records_to_recheck(
    session: AsyncSession, location_id: str, *, limit: int, exclude: Sequence[int] = ()
) -> list[int]:
    """Sync records whose GHL side may still change, least recently checked first: a payment
    not settled, money that can still be refunded, or a subscription."""
    stmt = (
        select(SyncOrder.id)
        .where(
            SyncOrder.ghl_location_id == location_id,
            or_(SyncOrder.ghl_order_id.is_not(None), SyncOrder.ghl_invoice_id.is_not(None)),
            or_(
                SyncOrder.payment_status.is_(None),
                SyncOrder.payment_status.in_(LIVE_PAYMENT_STATUSES),
                SyncOrder.subscription.is_not(None),
            ),
        )
        .order_by(SyncOrder.ghl_checked_at.is_not(None), SyncOrder.ghl_checked_at, SyncOrder.id)
        .limit(limit)
    )
    if exclude:
        stmt = stmt.where(SyncOrder.id.not_in(list(exclude)))
    return list((await session.execute(stmt)).scalars())


async def records_with_open_refunds(session: AsyncSession, location_id: str) -> list[int]:
    """Records with a refund waiting for GHL to show it: checked every run, not in turn."""
    stmt = (
        select(SyncOrder.id)
        .join(SyncRefund, SyncRefund.wizehire_order_id == SyncOrder.wizehire_order_id)
        .where(
            SyncOrder.ghl_location_id == location_id, SyncRefund.status.in_(OPEN_REFUND_STATUSES)
        )
        .distinct()
    )
    return sorted((await session.execute(stmt)).scalars())


async def records_by_ghl_ids(
    session: AsyncSession,
    location_id: str,
    *,
    order_ids: Sequence[str] = (),
    invoice_ids: Sequence[str] = (),
) -> dict[str, int]:
    """GHL order id or invoice id -> sync record id, for the ids that a record knows."""
    out: dict[str, int] = {}
    if order_ids:
        rows = await session.execute(
            select(SyncOrder.ghl_order_id, SyncOrder.id).where(
                SyncOrder.ghl_location_id == location_id,
                SyncOrder.ghl_order_id.in_(list(set(order_ids))),
            )
        )
        out.update({str(k): int(v) for k, v in rows})
    if invoice_ids:
        rows = await session.execute(
            select(SyncOrder.ghl_invoice_id, SyncOrder.id).where(
                SyncOrder.ghl_location_id == location_id,
                SyncOrder.ghl_invoice_id.in_(list(set(invoice_ids))),
            )
        )
        for key, value in rows:
            out.setdefault(str(key), int(value))
    return out


async def records_by_subscription(session: AsyncSession, location_id: str) -> dict[str, int]:
    """GHL subscription id -> sync record id (read in Python: JSON queries differ per database;
    only records that have a subscription are loaded)."""
    rows = await session.execute(
        select(SyncOrder.id, SyncOrder.subscription).where(
            SyncOrder.ghl_location_id == location_id, SyncOrder.subscription.is_not(None)
        )
    )
    out: dict[str, int] = {}
    for record_id, sub in rows:
        if isinstance(sub, dict) and sub.get("ghl_subscription_id"):
            out[str(sub["ghl_subscription_id"])] = int(record_id)
    return out


async def earliest_record_at(session: AsyncSession, location_id: str) -> datetime | None:
    """Where a location's first run starts reading transactions."""
    stmt = select(func.min(SyncOrder.created_at)).where(SyncOrder.ghl_location_id == location_id)
    return (await session.execute(stmt)).scalar_one_or_none()


# --- GHL orders nobody knows ---------------------------------------------------------------------


async def record_unmatched(
    session: AsyncSession,
    location_id: str,
    ghl_order_id: str,
    *,
    event_type: str | None,
    snapshot: dict[str, Any] | None,
) -> UnmatchedGhlOrder:
    """Insert or refresh the row (first_seen_at stays); returns it."""
    now = utcnow()
    values: dict[str, Any] = {"last_seen_at": now, "last_event_type": event_type}
    if snapshot is not None:
        values["snapshot"] = snapshot
    stmt = (
        _insert(session)(UnmatchedGhlOrder)
        .values(
            ghl_location_id=location_id,
            ghl_order_id=ghl_order_id,
            first_seen_at=now,
            **values,
        )
        .on_conflict_do_update(index_elements=["ghl_location_id", "ghl_order_id"], set_=values)
    )
    await session.execute(stmt)
    row = (
        await session.execute(
            select(UnmatchedGhlOrder)
            .where(
                UnmatchedGhlOrder.ghl_location_id == location_id,
                UnmatchedGhlOrder.ghl_order_id == ghl_order_id,
            )
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    return row


async def claim_report(session: AsyncSession, unmatched_id: int) -> bool:
    """True exactly once per row: whoever flips `reported_at` sends the Slack message."""
    result = await session.execute(
        update(UnmatchedGhlOrder)
        .where(UnmatchedGhlOrder.id == unmatched_id, UnmatchedGhlOrder.reported_at.is_(None))
        .values(reported_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


async def resolve_unmatched(session: AsyncSession, location_id: str, ghl_order_id: str) -> int:
    """A sync record now owns this GHL order: the row stays as history, marked resolved."""
    result = await session.execute(
        update(UnmatchedGhlOrder)
        .where(
            UnmatchedGhlOrder.ghl_location_id == location_id,
            UnmatchedGhlOrder.ghl_order_id == ghl_order_id,
            UnmatchedGhlOrder.resolved_at.is_(None),
        )
        .values(resolved_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


async def count_unmatched(session: AsyncSession) -> int:
    stmt = (
        select(func.count())
        .select_from(UnmatchedGhlOrder)
        .where(UnmatchedGhlOrder.resolved_at.is_(None))
    )
    return int((await session.execute(stmt)).scalar_one())
