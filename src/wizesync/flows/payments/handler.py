"""Flow 2: GHL says an order or invoice changed -> the Wizehire order's `order.advance` -> GHL's
current data -> Wizehire.

`OrderCreate`, `OrderStatusUpdate`: the record of that GHL order; else, when the body says the
order was made from an invoice, the record of that invoice still without an order (the body only
says where to look: the record's advance links the order from GHL's answers, no GET here);
else, for an order GHL made from an invoice (`source.type == invoice`, read from GHL's current
order), the record of that invoice, which keeps the order id from now on (the order flow looks
before it searches). An order no record
knows is kept in `unmatched_ghl_orders` and reported to Slack once, never dropped: a checkout
whose Wizehire order comes later resolves it when a record takes the order.

`InvoicePaid`, `InvoicePartiallyPaid`, `InvoiceVoid`: the record of that invoice. An invoice no
record knows is not ours (GHL's own invoicing); if it makes an order, that order is reported.

The event only says "look", and the look is not done here: once the record is known, the handler
queues an internal `order.advance` on the Wizehire order's own ordering key (`advance.py`).
That event runs the order's remaining steps (e.g. the fulfillment of the order GHL made when the
customer paid our invoice in GHL) and the refresh from GHL's current data, in line with the
order's Wizehire events instead of racing them, and skips the GHL reads when a refresh that
started after this webhook arrived has already stored the state. Late, repeated or reordered
deliveries converge on the same Wizehire state, patched once.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from wizesync.db import sync_repo
from wizesync.flows.outcomes import calling
from wizesync.flows.payments.advance import queue_advance_for_event
from wizesync.flows.payments.refresh import adopt_ghl_order
from wizesync.flows.payments.unmatched import report_unmatched
from wizesync.ghl.webhook_events import InvoiceEvent, OrderEvent
from wizesync.inbox.context import EventContext, PermanentFailure
from wizesync.inbox.registry import registry

log = logging.getLogger(__name__)


@registry.on("ghl", "OrderCreate", "OrderStatusUpdate")
async def on_order_event(ctx: EventContext) -> None:
    event = _parse(OrderEvent, ctx.event.payload)
    location_id = event.location_id or event.alt_id
    if not location_id:
        raise PermanentFailure(f"GHL {event.type} for order {event.id} names no location")
    payload = ctx.event.payload if isinstance(ctx.event.payload, dict) else {}
    record_id = await _record_for_order(ctx, location_id, event.id, _invoice_named(payload))
    if record_id is None:
        snapshot = ctx.event.payload if isinstance(ctx.event.payload, dict) else None
        await report_unmatched(ctx, location_id, event.id, event_type=event.type, snapshot=snapshot)
        return
    async with ctx.unit_of_work() as session:
        record = await sync_repo.get(session, record_id)
        if record is None:
            raise PermanentFailure(f"sync record {record_id} vanished")
        await queue_advance_for_event(ctx, session, record)


@registry.on("ghl", "InvoicePaid", "InvoicePartiallyPaid", "InvoiceVoid")
async def on_invoice_event(ctx: EventContext) -> None:
    event = _parse(InvoiceEvent, ctx.event.payload)
    payload = ctx.event.payload if isinstance(ctx.event.payload, dict) else {}
    location_id = event.alt_id or payload.get("locationId")
    if not location_id:
        raise PermanentFailure(f"GHL {event.type} for invoice {event.id} names no location")
    async with ctx.unit_of_work() as session:
        record = await sync_repo.get_by_ghl_invoice(session, location_id, event.id)
        if record is not None:
            await queue_advance_for_event(ctx, session, record)
    if record is None:
        log.info(
            "GHL invoice event for an invoice no Wizehire order made; ignored",
            extra={"location_id": location_id, "invoice_id": event.id, "type": event.type},
        )


@registry.on("ghl", "InvoiceCreate", "InvoiceUpdate")
async def on_invoice_created_or_updated(ctx: EventContext) -> None:
    """Nothing to sync: money moves only with InvoicePaid / InvoicePartiallyPaid / InvoiceVoid
    (and the poller). Handled, so these common events end `done` instead of `dead`."""
    log.debug("GHL invoice created or updated; nothing to sync until it is paid or voided")


async def _record_for_order(
    ctx: EventContext, location_id: str, order_id: str, invoice_named: str | None = None
) -> int | None:
    async with ctx.unit_of_work() as session:
        record = await sync_repo.get_by_ghl_order(session, location_id, order_id)
        if record is not None:
            return record.id
        if invoice_named is not None:
            # The body names the invoice the order was made from: only where to look. The
            # record's advance links the order from GHL's own answers (the order flow's lookup),
            # so nothing is adopted on the event's word and GHL is not asked here.
            record = await sync_repo.get_by_ghl_invoice(session, location_id, invoice_named)
            if record is not None and record.ghl_order_id is None:
                return record.id
    # Not known by its id: an order GHL made from one of our invoices? Ask GHL, not the event.
    with calling(f"GHL get order {order_id}"):
        order = await ctx.services.ghl.get_order(location_id, order_id)
    source = order.source
    invoice_id = (
        source.id
        if source is not None and (source.type or "").lower() == "invoice"
        else (order.source_id if (order.source_type or "").lower() == "invoice" else None)
    )
    if not invoice_id:
        return None
    async with ctx.unit_of_work() as session:
        record = await sync_repo.get_by_ghl_invoice(session, location_id, invoice_id)
        record_id = record.id if record is not None else None
    if record_id is None:
        return None
    kept = await adopt_ghl_order(ctx, record_id, order_id)
    if kept != order_id:
        log.warning(
            "GHL made another order for an invoice whose record has an order",
            extra={
                "sync_order_id": record_id,
                "ghl_order_id": order_id,
                "record_ghl_order_id": kept,
            },
        )
        return None
    return record_id


def _invoice_named(payload: dict[str, Any]) -> str | None:
    """The invoice an order webhook's body says the order was made from, if it says so."""
    source = payload.get("source")
    if isinstance(source, dict) and str(source.get("type") or "").lower() == "invoice":
        value = source.get("id")
    elif str(payload.get("sourceType") or "").lower() == "invoice":
        value = payload.get("sourceId")
    else:
        value = None
    return value if isinstance(value, str) and value else None


def _parse(model: type[Any], payload: Any) -> Any:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise PermanentFailure(f"GHL event body does not fit {model.__name__}: {exc}") from exc
