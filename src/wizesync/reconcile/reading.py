"""Reading both systems a page at a time, into the shapes `categorise` compares.

GHL: a location's orders of the window (newest first, GHL's order, `limit` + `offset`) and its
transactions created since the window opened (a refund is only `amountRefunded` growing on a
transaction, and a late payment is a later transaction, so the transactions' list runs to now).
GHL's `startAt`/`endAt` are given as dates (the form its documentation shows); the exact window is
applied here, to the second. Orders GHL made from an invoice carry `sourceType: invoice` and the
invoice's id as `sourceId`: that is how "the invoice's order" is found.

Wizehire: `GET /v1/orders?updated_since=<since>` (an order created in the window was updated at or
after its creation), of which only the orders created in the window are compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from wizesync.ghl import models as m
from wizesync.ghl.client import GhlClient
from wizesync.ghl.errors import GhlNotFound
from wizesync.mapping import Mapping
from wizesync.reconcile.categorise import GhlSide, WizehireSide
from wizesync.wizehire.models import ListedOrder, as_utc

FULFILLED = frozenset({"fulfilled", "partially_fulfilled"})
GHL_PAGE_SIZE = 100


@dataclass(frozen=True)
class GhlPage:
    rows: list[Any]
    read: int  # items GHL returned (the next offset moves by this)
    more: bool
    total: int | None = None  # as GHL counts the list (None: it did not say)


def in_window(moment: datetime | None, since: datetime, until: datetime) -> bool:
    return moment is not None and since <= as_utc(moment) < until


def staged_row(order: m.Order, location_id: str) -> dict[str, Any]:
    """A GHL order as the run's working set keeps it (`ReconciliationGhlOrder` columns)."""
    source_type = order.source_type or (order.source.type if order.source else None)
    source_id = order.source_id or (order.source.id if order.source else None)
    return {
        "location_id": location_id,
        "ghl_order_id": order.id,
        "invoice_id": source_id if (source_type or "").lower() == "invoice" else None,
        "created_at": as_utc(order.created_at) if order.created_at else None,
        "currency": (order.currency or "").upper() or None,
        "amount": order.amount,
        "payment_status": order.status,
        "fulfilled": (order.fulfillment_status or "").lower() in FULFILLED,
        "mapped": False,
    }


async def ghl_orders_page(
    ghl: GhlClient,
    location_id: str,
    since: datetime,
    until: datetime,
    offset: int,
    limit: int = GHL_PAGE_SIZE,
) -> GhlPage:
    page = await ghl.list_orders(
        location_id,
        start_at=since.date().isoformat(),
        end_at=until.date().isoformat(),
        limit=limit,
        offset=offset,
    )
    rows = [staged_row(o, location_id) for o in page.items if in_window(o.created_at, since, until)]
    read = len(page.items)
    more = read == limit and (page.total is None or offset + read < page.total)
    return GhlPage(rows, read, more, page.total)


async def ghl_transactions_page(
    ghl: GhlClient,
    location_id: str,
    since: datetime,
    offset: int,
    limit: int = GHL_PAGE_SIZE,
) -> GhlPage:
    """`rows`: the transactions (`m.Transaction`)."""
    page = await ghl.list_transactions(
        location_id, start_at=since.date().isoformat(), limit=limit, offset=offset
    )
    read = len(page.items)
    more = read == limit and (page.total is None or offset + read < page.total)
    return GhlPage(list(page.items), read, more, page.total)


def transaction_doc(txn: m.Transaction) -> dict[str, Any]:
    """What `categorise` needs of a transaction, under GHL's own keys."""
    return {
        "_id": txn.id,
        "amount": _text(txn.amount),
        "amountRefunded": _text(txn.amount_refunded),
        "status": txn.status,
        "currency": txn.currency,
        "createdAt": as_utc(txn.created_at).isoformat() if txn.created_at else None,
    }


async def ghl_order_alone(ghl: GhlClient, location_id: str, order_id: str) -> GhlSide | None:
    """One GHL order outside the lists read (created outside the window, or on a location not
    mapped) with its transactions: two calls; None when GHL has no such order."""
    try:
        order = await ghl.get_order(location_id, order_id)
    except GhlNotFound:
        return None
    transactions = [t async for t in ghl.iter_transactions(location_id, entity_id=order.id)]
    row = staged_row(order, location_id)
    return GhlSide(
        location_id=location_id,
        order_id=order.id,
        amount=order.amount,
        currency=row["currency"],
        order_status=order.status,
        fulfilled=row["fulfilled"],
        transactions=[transaction_doc(t) for t in transactions],
    )


async def order_is_mapped(
    ghl: GhlClient, location_id: str, order_id: str, mapping: Mapping
) -> bool:
    """Has the order an item whose price or product is in the mapping? (GHL's order list has no
    items: one read of the order.)"""
    try:
        order = await ghl.get_order(location_id, order_id)
    except GhlNotFound:
        return False
    prices = {p.price_id for p in mapping.products.values()}
    products = {p.product_id for p in mapping.products.values()}
    for item in order.items:
        if item.price is not None and item.price.id in prices:
            return True
        product = item.product or {}
        if product.get("_id") in products or product.get("id") in products:
            return True
        if (
            item.price is not None
            and isinstance(item.price.model_extra, dict)
            and item.price.model_extra.get("product") in products
        ):
            return True
    return False


def wizehire_side(order: ListedOrder) -> WizehireSide:
    sync = order.sync
    return WizehireSide(
        order_id=order.id,
        status=order.status,
        amount=order.amount,
        currency=order.currency,
        payment_status=sync.payment_status if sync is not None else None,
        amount_refunded=sync.amount_refunded if sync is not None else None,
    )


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")
