"""What the order flow sends to GHL, built from a Wizehire order and the mapping (no I/O).

The invoice's name carries the Wizehire order id on purpose: it is how a later attempt finds an
invoice whose id a crash lost (`list_invoices(search=...)`), so it must never change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from wizesync.ghl import models as m
from wizesync.inbox.context import PermanentFailure
from wizesync.mapping import Mapping
from wizesync.wizehire.events import Order


def invoice_name(order: Order) -> str:
    return f"Wizehire order {order.id}"


def contact_upsert(order: Order) -> m.UpsertContact:
    customer = order.customer
    return m.UpsertContact(
        email=customer.email,
        first_name=customer.first_name,
        last_name=customer.last_name,
        phone=customer.phone or None,
        company_name=customer.company or None,
        source="Wizehire",
    )


def mapped_items(order: Order, mapping: Mapping) -> list[tuple[str, str, int, Decimal, str]]:
    """(price_id, product_id, qty, unit amount, name) per line; an unmapped SKU is a failure a
    human fixes in the mapping file (then replays the event)."""
    unmapped = sorted({item.sku for item in order.items if item.sku not in mapping.products})
    if unmapped:
        raise PermanentFailure(
            f"order {order.id}: SKU {', '.join(unmapped)} is not in the mapping's products "
            f"(add it with its GHL price_id and product_id, then replay this event)"
        )
    return [
        (
            mapping.products[item.sku].price_id,
            mapping.products[item.sku].product_id,
            item.quantity,
            item.unit_amount,
            item.name,
        )
        for item in order.items
    ]


def invoice_body(order: Order, mapping: Mapping, contact_id: str, *, live: bool) -> m.CreateInvoice:
    customer = order.customer
    name = " ".join(p for p in (customer.first_name, customer.last_name) if p) or customer.email
    items = [
        m.InvoiceItem(
            name=label,
            product_id=product_id,
            price_id=price_id,
            currency=order.currency,
            amount=amount,
            qty=qty,
        )
        for price_id, product_id, qty, amount, label in mapped_items(order, mapping)
    ]
    return m.CreateInvoice(
        name=invoice_name(order),
        title="INVOICE",
        currency=order.currency,
        items=items,
        contact_details=m.InvoiceContactDetails(
            id=contact_id,
            name=name,
            email=customer.email,
            phone_no=customer.phone or "",
            company_name=customer.company or None,
        ),
        issue_date=order.created_at.date(),
        sent_to=m.SentTo(email=[customer.email]),
        live_mode=live,
        terms_notes=f"Wizehire order {order.id} (account {order.account_id})",
    )


def payment_for(invoice: m.Invoice, order: Order) -> m.RecordInvoicePayment:
    due = invoice.amount_due if invoice.amount_due is not None else order.amount
    return m.RecordInvoicePayment(
        mode="other",
        amount=due,
        notes=f"Paid in Wizehire (order {order.id})",
    )


def fulfillment_body(
    order: Order, ghl_order: m.Order | None, mapping: Mapping
) -> m.CreateFulfillment:
    """Items as GHL's order lists them (that is what a fulfillment refers to); the mapped
    prices of the Wizehire items when GHL's order shows none, or was not read (`None`: an order
    GHL made from our invoice, whose items are the invoice's)."""
    items = [
        m.FulfillmentItem(price_id=item.price.id, qty=item.qty or 1)
        for item in (ghl_order.items if ghl_order is not None else [])
        if item.price is not None and item.price.id
    ]
    if not items:
        items = [
            m.FulfillmentItem(price_id=price_id, qty=qty)
            for price_id, _, qty, _, _ in mapped_items(order, mapping)
        ]
    tracking = m.FulfillmentTracking(
        tracking_number=order.id,
        shipping_carrier=mapping.fulfillment.carrier,
        tracking_url=mapping.fulfillment.tracking_url_for(order.id),
    )
    return m.CreateFulfillment(
        items=items, trackings=[tracking], notify_customer=mapping.fulfillment.notify_customer
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def match_window(order: Order, mapping: Mapping) -> tuple[datetime, datetime]:
    window = timedelta(minutes=mapping.orders.match_window_minutes)
    created = _utc(order.created_at)
    return created - window, created + window


def is_match(candidate: m.Order, order: Order, mapping: Mapping) -> bool:
    """Same amount and currency, created inside the window around the Wizehire order."""
    if candidate.amount is None or candidate.amount != order.amount:
        return False
    if (candidate.currency or "").upper() != order.currency:
        return False
    if candidate.created_at is None:
        return True  # the list call already bounded it by time
    start, end = match_window(order, mapping)
    return start <= _utc(candidate.created_at) <= end
