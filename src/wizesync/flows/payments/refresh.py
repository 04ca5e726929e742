"""One sync record refreshed from GHL's current data: the path every GHL event and the poller take.

Read (order, its transactions one by one, its subscription) -> compute the payment state ->
store it on the record -> `push_order_state` (PATCHes Wizehire only when the state changed) ->
settle accepted refunds that GHL now shows. Nothing from an event's snapshot is used: events
arrive late, twice and out of order, GHL's current answer does not.

A record that knows only its invoice (the invoice's order not seen yet) looks for the order in the
invoice's transactions and keeps it (conditional UPDATE: never overwrites another writer's id);
until then its state comes from the invoice (a voided unpaid invoice is `cancelled`).

A Wizehire order cancelled on which GHL captured nothing is `cancelled`, whatever GHL's order still
says (a checkout order matched to it stays open in GHL: nothing of ours to void).

`store_state_seen` is the same path after the reads, for the order flow when GHL's answers to its
own invoice payment already are that data (it stamps `own_payment_state_at`, see advance.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from wizesync.db import poller_repo, sync_repo
from wizesync.db.base import utcnow
from wizesync.flows.outcomes import calling
from wizesync.flows.payments.payment_state import (
    MixedCurrencies,
    PaymentState,
    compute_payment_state,
)
from wizesync.flows.payments.subscriptions import current_subscription
from wizesync.flows.payments.wizehire_sync import push_order_state
from wizesync.flows.refunds.settle import settle_pending_refunds
from wizesync.ghl import models as m
from wizesync.inbox.context import FlowContext, PermanentFailure, RetryLater

log = logging.getLogger(__name__)

_VOID_INVOICE = frozenset({"void", "voided", "cancelled", "canceled"})


@dataclass(frozen=True)
class _Target:
    record_id: int
    location_id: str
    ghl_order_id: str | None
    ghl_invoice_id: str | None
    currency: str
    subscription: dict[str, Any] | None
    wizehire_status: str


async def refresh_order_from_ghl(ctx: FlowContext, sync_order_id: int) -> PaymentState:
    """Refresh one record from GHL and tell Wizehire if anything changed (see module doc).

    Raises RetryLater (GHL/Wizehire transient, install needs re-auth) and PermanentFailure (mixed
    or mismatched currency, GHL refusing in words) like every flow step.
    """
    target = await _load(ctx, sync_order_id)
    ghl = ctx.services.ghl
    # `ghl_checked_at` is when these reads STARTED, not when they ended: every read below began
    # after this moment, so the stored state reflects any change GHL announced (by a webhook we
    # received) before it. An `order.advance` whose webhook arrived no later than this may skip
    # its own refresh (advance.py); stamping the end would let a webhook that arrived while
    # the reads ran look covered by data read before the change it announces.
    reads_started = utcnow()
    order: m.Order | None = None
    invoice: m.Invoice | None = None
    order_id = target.ghl_order_id
    if order_id is None and target.ghl_invoice_id is not None:
        order_id, invoice = await _order_of_invoice(ctx, target)
    if order_id is not None:
        with calling(f"GHL get order {order_id}"):
            order = await ghl.get_order(target.location_id, order_id)
        transactions = await _transactions(ctx, target.location_id, order_id)
    else:
        assert invoice is not None and target.ghl_invoice_id is not None
        order = _invoice_as_order(invoice)
        transactions = await _transactions(ctx, target.location_id, target.ghl_invoice_id)

    return await _store_and_tell(ctx, target, order_id, order, transactions, reads_started)


async def store_state_seen(
    ctx: FlowContext,
    sync_order_id: int,
    *,
    order: m.Order,
    transactions: list[m.Transaction],
    reads_started: datetime,
) -> PaymentState:
    """What `refresh_order_from_ghl` does after its reads, from GHL answers the caller has just
    had instead (the order flow, which has just paid the invoice GHL made `order` from and
    listed that order's `transactions`): compute, store, tell Wizehire, settle refunds.
    `reads_started`: when the earliest of those answers was asked for (see `ghl_checked_at`)."""
    target = await _load(ctx, sync_order_id)
    if target.ghl_order_id != order.id:
        raise RetryLater(
            f"sync record {sync_order_id} is linked to GHL order "
            f"{target.ghl_order_id}, not {order.id}; looking again"
        )
    return await _store_and_tell(
        ctx, target, order.id, order, transactions, reads_started, own_payment=True
    )


async def _store_and_tell(
    ctx: FlowContext,
    target: _Target,
    order_id: str | None,
    order: m.Order,
    transactions: list[m.Transaction],
    reads_started: datetime,
    *,
    own_payment: bool = False,
) -> PaymentState:
    sync_order_id = target.record_id
    try:
        state = compute_payment_state(
            transactions,
            order,
            ctx.services.mapping,
            wizehire_cancelled=target.wizehire_status == "cancelled",
        )
    except MixedCurrencies as exc:
        raise PermanentFailure(f"order {sync_order_id}: {exc}") from exc
    if state.currency is not None and state.currency != target.currency.upper():
        raise PermanentFailure(
            f"GHL {'order ' + order_id if order_id else 'invoice'} is in {state.currency}, the "
            f"Wizehire order in {target.currency}: amounts cannot be synced; check the match"
        )
    known = (target.subscription or {}).get("ghl_subscription_id")
    subscription = await current_subscription(ctx, target.location_id, order, transactions, known)

    async with ctx.unit_of_work() as session:
        values: dict[str, Any] = {**state.as_record(), "ghl_checked_at": reads_started}
        if own_payment:
            values["own_payment_state_at"] = utcnow()
        if subscription is not None:
            values["subscription"] = subscription
        await sync_repo.set_fields(session, sync_order_id, **values)
        if order_id is not None:
            await poller_repo.resolve_unmatched(session, target.location_id, order_id)

    await push_order_state(ctx, sync_order_id)
    await settle_pending_refunds(ctx, sync_order_id, state)
    return state


async def adopt_ghl_order(
    ctx: FlowContext, sync_order_id: int, ghl_order_id: str, source: str = "invoice"
) -> str | None:
    """Keep `ghl_order_id` on the record unless it already has one; the id it now has."""
    try:
        async with ctx.unit_of_work() as session:
            await sync_repo.link_ghl_order(session, sync_order_id, ghl_order_id, source=source)
    except IntegrityError as exc:
        # One GHL order belongs to one record (unique index): another took it meanwhile.
        raise RetryLater(
            f"GHL order {ghl_order_id} was just linked to another Wizehire order; looking again"
        ) from exc
    async with ctx.unit_of_work() as session:
        record = await sync_repo.get(session, sync_order_id)
        return record.ghl_order_id if record is not None else None


# --- reading GHL ---------------------------------------------------------------------------------


async def _load(ctx: FlowContext, sync_order_id: int) -> _Target:
    async with ctx.unit_of_work() as session:
        record = await sync_repo.get(session, sync_order_id)
        if record is None:
            raise PermanentFailure(f"no sync record {sync_order_id}")
        if record.ghl_location_id is None or (
            record.ghl_order_id is None and record.ghl_invoice_id is None
        ):
            raise PermanentFailure(
                f"sync record {sync_order_id} ({record.wizehire_order_id}) has no GHL order or "
                "invoice yet: nothing to read payments from"
            )
        return _Target(
            record.id,
            record.ghl_location_id,
            record.ghl_order_id,
            record.ghl_invoice_id,
            record.currency,
            record.subscription,
            record.wizehire_status,
        )


async def _transactions(ctx: FlowContext, location_id: str, entity_id: str) -> list[m.Transaction]:
    """The entity's transactions, each re-read by id (the detail is GHL's current word)."""
    ghl = ctx.services.ghl
    with calling(f"GHL list transactions of {entity_id}"):
        listed = [t async for t in ghl.iter_transactions(location_id, entity_id=entity_id)]
    out: list[m.Transaction] = []
    for txn in listed:
        with calling(f"GHL get transaction {txn.id}"):
            detail = await ghl.get_transaction(location_id, txn.id)
        if detail.entity_id in (None, entity_id) or detail.invoice_id == entity_id:
            out.append(detail)
    return out


async def _order_of_invoice(
    ctx: FlowContext, target: _Target
) -> tuple[str | None, m.Invoice | None]:
    """The order GHL made for the record's invoice (kept on the record), else the invoice."""
    assert target.ghl_invoice_id is not None
    ghl = ctx.services.ghl
    with calling(f"GHL list transactions of invoice {target.ghl_invoice_id}"):
        listed = [
            t
            async for t in ghl.iter_transactions(
                target.location_id, entity_id=target.ghl_invoice_id
            )
        ]
    order_ids = sorted({t.entity_id for t in listed if t.entity_type == "order" and t.entity_id})
    if len(order_ids) == 1:
        kept = await adopt_ghl_order(ctx, target.record_id, order_ids[0])
        return kept, None
    with calling(f"GHL get invoice {target.ghl_invoice_id}"):
        invoice = await ghl.get_invoice(target.location_id, target.ghl_invoice_id)
    return None, invoice


def _invoice_as_order(invoice: m.Invoice) -> m.Order:
    """An unpaid (or voided) invoice seen as the order it would become."""
    status = "cancelled" if (invoice.status or "").lower() in _VOID_INVOICE else invoice.status
    return m.Order.model_validate(
        {"_id": invoice.id, "amount": invoice.total, "currency": invoice.currency, "status": status}
    )


def order_made_from(invoice: m.Invoice, order_id: str) -> m.Order:
    """The order GHL made from `invoice` as the invoice shows it: its total, currency and
    status (what the payment state needs of an order that has money captured)."""
    return _invoice_as_order(invoice).model_copy(update={"id": order_id})
