"""Which GHL order a Wizehire order is, a page of Wizehire orders at a time.

In this order, the first that gives an answer:
1. the service's sync record (`sync_orders.ghl_order_id`): what the sync itself linked;
2. `ghl_order_id` on the Wizehire order (a purchase through a GHL checkout), at the order's
   `ghl_location_id`, else the sync record's location, else the mapping's routing;
3. the invoice's order: the sync record's `ghl_invoice_id`, and the GHL order whose source is
   that invoice.
The GHL order is looked up in the run's working set (the orders of the window read from GHL);
one outside it (created before the window, or on a location no mapping names) is read on its own.
Every item's `detail` says which way it was matched.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from wizesync.db import reconcile_repo as repo
from wizesync.db.reconcile_models import ReconciliationGhlOrder
from wizesync.db.reconcile_repo import SyncLink
from wizesync.mapping import Mapping
from wizesync.reconcile.categorise import GhlSide
from wizesync.wizehire.models import ListedOrder


@dataclass
class Link:
    """Where to look for one Wizehire order's GHL order, and how that was decided."""

    location_id: str | None
    ghl_order_id: str | None = None
    invoice_id: str | None = None
    how: str = "no link to a GHL order"
    staged: ReconciliationGhlOrder | None = None


def link_for(order: ListedOrder, record: SyncLink | None, mapping: Mapping) -> Link:
    if record is not None and record.ghl_order_id and record.ghl_location_id:
        return Link(
            record.ghl_location_id,
            ghl_order_id=record.ghl_order_id,
            how="matched through the sync record",
        )
    if order.ghl_order_id:
        location = (
            order.ghl_location_id
            or (record.ghl_location_id if record else None)
            or mapping.location_for(order.account_id)
        )
        return Link(
            location,
            ghl_order_id=order.ghl_order_id,
            how="matched through ghl_order_id on the Wizehire order",
        )
    if record is not None and record.ghl_invoice_id and record.ghl_location_id:
        return Link(
            record.ghl_location_id,
            invoice_id=record.ghl_invoice_id,
            how=f"matched through the invoice's order (invoice {record.ghl_invoice_id})",
        )
    if record is None:
        return Link(
            mapping.location_for(order.account_id, order.ghl_location_id),
            how="the service has no sync record of this order",
        )
    return Link(record.ghl_location_id, how="the sync record has no GHL order or invoice yet")


async def resolve_links(session: AsyncSession, run_id: int, links: list[Link]) -> None:
    """Fill `staged` from the working set: two indexed queries for the whole page."""
    by_order = await repo.staged_by_order_ids(
        session,
        run_id,
        [
            (link.location_id, link.ghl_order_id)
            for link in links
            if link.location_id and link.ghl_order_id
        ],
    )
    by_invoice = await repo.staged_by_invoice_ids(
        session,
        run_id,
        [
            (link.location_id, link.invoice_id)
            for link in links
            if link.location_id and link.invoice_id
        ],
    )
    for link in links:
        if link.location_id is None:
            continue
        if link.ghl_order_id:
            link.staged = by_order.get((link.location_id, link.ghl_order_id))
        elif link.invoice_id:
            link.staged = by_invoice.get((link.location_id, link.invoice_id))
            if link.staged is not None:
                link.ghl_order_id = link.staged.ghl_order_id


def side_of(row: ReconciliationGhlOrder) -> GhlSide:
    return GhlSide(
        location_id=row.location_id,
        order_id=row.ghl_order_id,
        amount=row.amount,
        currency=row.currency,
        order_status=row.payment_status,
        fulfilled=bool(row.fulfilled),
        transactions=list(row.transactions or []),
    )
