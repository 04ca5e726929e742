"""Flow 1: a Wizehire order -> a GHL order (found, matched, or made through an invoice) and its
initial fulfillment, then Wizehire is told where the order stands.

Every step (route, contact, invoice, payment, order, fulfillment) first looks at the sync record,
skips what is done, and writes its result there in its own committed transaction before the next
outbound call. Creates are preceded by a look: the invoice by its deterministic name once an
attempt has announced it (`invoice_requested_at`), the invoice payment by the invoice's status,
the fulfillment by the order's list. So a crash, a duplicate delivery, or `order.updated` after
`order.created` resumes where the last attempt stopped and never creates anything twice.

The handler works from the record's snapshot (the newest Wizehire order seen), not from the
event it was woken by: an older event delivered late does the same as the newest would.

Reads skipped because this attempt already knows the answer (each saves a GHL round trip and
its budget reservation; see docs/BENCHMARKS.md "Flows"):
- the invoice's status before recording its payment, when this attempt created it: the create's
  answer says it is unpaid, and nobody else has its id yet;
- the order's fulfillments, when this attempt found the order in a list that says
  `fulfillmentStatus: unfulfilled` (an earlier attempt that may have fulfilled it stored the
  order's id first, so it would not be looking it up now);
- the order itself before the fulfillment, when GHL made it from our invoice: its items are the
  invoice's, i.e. the mapped prices; should GHL refuse those (4xx: nothing was created), the
  order is read and the fulfillment sent again with GHL's items;
- the contact's orders (the match), when the upsert's answer says GHL has just created the
  contact: it has no orders;
- when this attempt's payment paid the invoice: the order is found in the invoice's
  transactions, which also carry the money on it, so the payment state is computed from them and
  the payment's answer instead of the refresh's reads (`store_state_seen`), and the order's
  fulfillments are not listed (GHL made the order from this payment a moment ago; a refusal to
  over-fulfil reads the list then).
A value derived without I/O (the routed location) rides along with the next save.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from wizesync.db import sync_repo
from wizesync.db.base import utcnow
from wizesync.db.sync_models import SyncOrder
from wizesync.flows import order_bodies as bodies
from wizesync.flows.outcomes import calling
from wizesync.flows.payments.refresh import (
    order_made_from,
    refresh_order_from_ghl,
    store_state_seen,
)
from wizesync.flows.payments.wizehire_sync import push_order_state
from wizesync.ghl import models as m
from wizesync.ghl.errors import GhlNotFound, GhlValidationError
from wizesync.inbox.context import EventContext, PermanentFailure, RetryLater
from wizesync.inbox.registry import registry
from wizesync.notify.outbox import queue_notice
from wizesync.notify.slack import Notice
from wizesync.wizehire.events import Order, OrderEvent

log = logging.getLogger(__name__)

_PAID_INVOICE = frozenset({"paid", "partially_paid"})


@dataclass(frozen=True)
class _Seen:
    """GHL's answers this attempt has just had about its order, enough for the payment state:
    the order GHL made from the invoice this attempt paid (as the payment's answer shows the
    invoice) and that order's transactions, listed after the payment."""

    order: m.Order
    transactions: list[m.Transaction]
    reads_started: datetime


@registry.on("wizehire", "order.created", "order.updated")
async def handle_order_event(ctx: EventContext) -> None:
    try:
        event = OrderEvent.model_validate(ctx.event.payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PermanentFailure(
            f"not a valid Wizehire order event ({where}: {first['msg']})"
        ) from None
    async with ctx.unit_of_work() as session:
        record = await sync_repo.create_or_update_from_order(
            session, event.data.order, event_at=event.timestamp
        )
        await session.refresh(record)  # every column loaded: the steps start from it
    await advance_order(ctx, record.id, record=record)


async def advance_order(
    ctx: EventContext, sync_order_id: int, *, record: SyncOrder | None = None
) -> None:
    """Run every step of the order not done yet (also callable from other flows, e.g. when GHL
    reports an invoice of ours paid). Failures are noted on the record, then raised.
    `record`: the record as just committed, if the caller has it (saves reading it again)."""
    run = _OrderRun(ctx, sync_order_id)
    try:
        await run.steps(record)
    except (PermanentFailure, RetryLater) as exc:
        await run.note_error(str(exc))
        raise


class _OrderRun:
    def __init__(self, ctx: EventContext, sync_order_id: int) -> None:
        self.ctx = ctx
        self.id = sync_order_id
        self.ghl = ctx.services.ghl
        self.mapping = ctx.services.mapping
        self.rec: SyncOrder
        self.order: Order
        self.loc = ""
        self.ghl_order: m.Order | None = None
        self.created_invoice: m.Invoice | None = None  # by this attempt: known unpaid
        self.unfulfilled = False  # GHL's answers to this attempt say so for ghl_order_id
        self.new_contact = False  # this attempt's upsert created the contact
        self.paid_invoice: m.Invoice | None = None  # this attempt's payment made it paid
        self.seen: _Seen | None = None
        self.staged: dict[str, Any] = {}  # no I/O behind them: written with the next save
        self.link_read = False  # the last save also read whether a GHL handler linked the order

    # --- plumbing --------------------------------------------------------------------------------
    async def load(self, record: SyncOrder | None = None) -> None:
        if record is None:
            async with self.ctx.read() as session:
                record = await sync_repo.get(session, self.id)
        if record is None:
            raise PermanentFailure(f"sync record {self.id} is gone")
        self.rec = record
        snapshot = {k: v for k, v in record.order_snapshot.items() if k != sync_repo.EVENT_AT_KEY}
        self.order = Order.model_validate(snapshot)

    async def save(self, *, read_link: bool = False, **values: Any) -> None:
        """One step's result, committed before anything else happens (with what was staged).
        `read_link`: in the same transaction, adopt the GHL order a GHL handler linked."""
        values = {**self.staged, **values}
        async with self.ctx.unit_of_work() as session:
            await sync_repo.set_fields(session, self.id, **values)
            fresh = await sync_repo.get(session, self.id) if read_link else None
        self.staged = {}
        for name, value in values.items():
            setattr(self.rec, name, value)
        self.link_read = read_link
        if fresh is not None and fresh.ghl_order_id:
            self.rec.ghl_order_id = fresh.ghl_order_id
            self.rec.ghl_order_source = fresh.ghl_order_source

    def stage(self, **values: Any) -> None:
        """Values computed without I/O: stored with the next save (one commit fewer). Nothing
        is lost by a crash before it: the next attempt computes them again."""
        self.staged.update(values)
        for name, value in values.items():
            setattr(self.rec, name, value)

    async def note_error(self, error: str) -> None:
        try:
            await self.save(last_error=error[:2000])
        except Exception as exc:  # the event's own outcome records the error anyway
            log.warning("could not note the error on the sync record", exc_info=exc)

    async def claim(self, ghl_order_id: str, source: str) -> None:
        """Link the GHL order; the unique index makes two Wizehire orders racing for one GHL
        order end with one winner, the loser looking again on its next attempt."""
        try:
            await self.save(ghl_order_id=ghl_order_id, ghl_order_source=source)
        except IntegrityError:
            raise RetryLater(
                f"GHL order {ghl_order_id} was just linked to another Wizehire order; looking again"
            ) from None

    def not_yet(self, reason: str, final: str) -> RetryLater:
        """RetryLater while attempts remain; on the last one, dead with `final` in words."""
        attempt, limit = self.ctx.event.attempt, self.ctx.settings.worker_max_attempts
        if attempt >= limit:
            raise PermanentFailure(f"{final} (gave up after {attempt} attempts)")
        return RetryLater(reason)

    # --- the steps -------------------------------------------------------------------------------
    async def steps(self, record: SyncOrder | None = None) -> None:
        await self.load(record)
        await self.route()
        if self.rec.wizehire_status == "cancelled":
            await self.cancel()
        else:
            await self.contact()
            if not self.rec.ghl_order_id:
                await self.resolve_order()
            if self.rec.ghl_order_id and not self.rec.ghl_fulfillment_id:
                await self.fulfill()
        await self.sync_state()

    async def route(self) -> None:
        order = self.order
        location = self.rec.ghl_location_id or self.mapping.location_for(
            order.account_id, order.ghl_location_id
        )
        if not location:
            raise PermanentFailure(
                f"order {order.id}: no GHL location to send it to (the order has no "
                f"ghl_location_id, account {order.account_id} is not in the mapping's "
                f"locations.accounts, and locations.default is not set)"
            )
        self.loc = location
        if self.rec.ghl_location_id != location:
            self.stage(ghl_location_id=location)

    async def contact(self) -> None:
        if self.rec.ghl_contact_id:
            return
        with calling(f"GHL contact upsert for order {self.order.id}"):
            result = await self.ghl.upsert_contact(self.loc, bodies.contact_upsert(self.order))
        await self.save(ghl_contact_id=result.contact.id)
        self.new_contact = result.new is True

    async def resolve_order(self) -> None:
        strategy = self.mapping.orders.strategy
        if self.order.ghl_order_id:
            await self.explicit_order(self.order.ghl_order_id)
            return
        invoicing = self.rec.ghl_invoice_id or self.rec.invoice_requested_at
        if strategy in ("match_only", "match_or_invoice") and not invoicing:
            # A contact GHL has just created has no orders: nothing to match, nothing to list.
            if not self.new_contact and await self.match():
                return
            if strategy == "match_only":
                raise self.not_yet(
                    f"no GHL order of this contact matches {self.order.amount} "
                    f"{self.order.currency} yet",
                    f"order {self.order.id}: no GHL order of contact {self.rec.ghl_contact_id} "
                    f"for {self.order.amount} {self.order.currency} within "
                    f"{self.mapping.orders.match_window_minutes} minutes of its creation "
                    f"(strategy match_only: nothing is created)",
                )
        await self.invoice()

    async def explicit_order(self, ghl_order_id: str) -> None:
        with calling(f"GHL get order {ghl_order_id}"):
            try:
                found = await self.ghl.get_order(self.loc, ghl_order_id)
            except GhlNotFound:
                found = None
        if found is None:
            raise self.not_yet(
                f"GHL order {ghl_order_id} is not visible yet",
                f"order {self.order.id}: GHL order {ghl_order_id} (its ghl_order_id) does not "
                f"exist in location {self.loc}",
            )
        problems = []
        if (found.currency or "").upper() != self.order.currency:
            problems.append(f"currency {found.currency} != {self.order.currency}")
        if found.amount is None or found.amount != self.order.amount:
            problems.append(f"amount {found.amount} != {self.order.amount}")
        if problems:
            raise PermanentFailure(
                f"order {self.order.id}: GHL order {ghl_order_id} does not match it ("
                + "; ".join(problems)
                + ")"
            )
        async with self.ctx.read() as session:
            owner = await sync_repo.get_by_ghl_order(session, self.loc, found.id)
        if owner is not None and owner.id != self.id:
            raise PermanentFailure(
                f"order {self.order.id}: GHL order {found.id} (its ghl_order_id) is already "
                f"synced with Wizehire order {owner.wizehire_order_id}"
            )
        self.ghl_order = found
        await self.claim(found.id, "explicit")

    async def match(self) -> bool:
        start, end = bodies.match_window(self.order, self.mapping)
        with calling(f"GHL list orders of contact {self.rec.ghl_contact_id}"):
            candidates = [
                o
                async for o in self.ghl.iter_orders(
                    self.loc,
                    contact_id=self.rec.ghl_contact_id,
                    start_at=start,
                    end_at=end,
                    max_items=500,
                )
            ]
        fitting = [c for c in candidates if bodies.is_match(c, self.order, self.mapping)]
        taken: set[str] = set()
        if fitting:
            async with self.ctx.read() as session:
                taken = await self.taken(session, fitting)
        matches = [c for c in fitting if c.id not in taken]
        if len(matches) > 1:
            await self.ambiguous(matches)
        if not matches:
            return False
        await self.claim(matches[0].id, "matched")
        return True

    async def taken(self, session: AsyncSession, candidates: list[m.Order]) -> set[str]:
        """The candidates that are another Wizehire order's GHL order: linked already, or made
        from its invoice (the link may not be stored yet, but the invoice id is, since before it
        was paid). Two queries whatever the number of candidates (a repeat customer has many)."""
        invoices: dict[str, str] = {}  # invoice id -> candidate order id
        for candidate in candidates:
            source = candidate.source
            source_type = candidate.source_type or (source.type if source else None)
            source_id = candidate.source_id or (source.id if source else None)
            if source_type == "invoice" and source_id:
                invoices[source_id] = candidate.id
        claimed = await sync_repo.ghl_orders_claimed(
            session, self.loc, [c.id for c in candidates], except_id=self.id
        )
        invoiced = await sync_repo.ghl_invoices_owned(
            session, self.loc, list(invoices), except_id=self.id
        )
        return claimed | {invoices[i] for i in invoiced}

    async def ambiguous(self, matches: list[m.Order]) -> None:
        ids = ", ".join(o.id for o in matches)
        reason = (
            f"ambiguous match: {len(matches)} candidates (GHL orders {ids} of contact "
            f"{self.rec.ghl_contact_id}, {self.order.amount} {self.order.currency})"
        )
        candidates = ",".join(sorted(o.id for o in matches))
        async with self.ctx.unit_of_work() as session:  # durable; once per set of candidates
            await queue_notice(
                session,
                self.ctx.services,
                Notice(
                    title=f"Order {self.order.id}: {len(matches)} GHL orders match, none chosen",
                    lines=(
                        f"candidates: {ids}",
                        "set ghl_order_id on the Wizehire order (or fix the data), then replay",
                    ),
                    key=f"ambiguous:{self.order.id}:{candidates}",
                    severity="action",
                ),
            )
        raise PermanentFailure(reason)

    # --- invoice path ----------------------------------------------------------------------------
    async def invoice(self) -> None:
        if not self.rec.ghl_invoice_id:
            await self.create_invoice()
        invoice_id = self.rec.ghl_invoice_id
        assert invoice_id is not None
        if self.order.status == "paid" and not self.rec.invoice_payment_recorded_at:
            await self.record_payment(invoice_id)
        elif self.order.status != "paid":
            with calling(f"GHL get invoice {invoice_id}"):
                invoice = await self.ghl.get_invoice(self.loc, invoice_id)
            if invoice.status != "paid":
                return  # unpaid: GHL makes its order once the invoice is paid (Wizehire or GHL)
        await self.find_invoice_order(invoice_id)

    async def create_invoice(self) -> None:
        body = bodies.invoice_body(
            self.order,
            self.mapping,
            self.rec.ghl_contact_id or "",
            live=self.ctx.settings.is_production,
        )
        found = await self.find_invoice() if self.rec.invoice_requested_at else None
        if found is None:
            await self.save(invoice_requested_at=utcnow())  # intent first: next time, look
            with calling(f"GHL create invoice for order {self.order.id}"):
                self.created_invoice = await self.ghl.create_invoice(self.loc, body)
            found = self.created_invoice.id
        await self.save(ghl_invoice_id=found)

    async def find_invoice(self) -> str | None:
        """An invoice an earlier attempt created but could not store (crash, lost answer)."""
        name = bodies.invoice_name(self.order)
        with calling(f"GHL list invoices for order {self.order.id}"):
            found = [
                i
                async for i in self.ghl.iter_invoices(self.loc, search=self.order.id, max_items=100)
                if i.name == name
            ]
        live = [i for i in found if i.status != "void"] or found
        return live[0].id if live else None

    async def record_payment(self, invoice_id: str) -> None:
        invoice = self.created_invoice
        if invoice is None or invoice.id != invoice_id or invoice.status in _PAID_INVOICE:
            with calling(f"GHL get invoice {invoice_id}"):
                invoice = await self.ghl.get_invoice(self.loc, invoice_id)
        if invoice.status == "void":
            raise PermanentFailure(
                f"order {self.order.id} is paid in Wizehire but its GHL invoice {invoice_id} is "
                f"void: record the payment in GHL by hand, or correct the order, then replay"
            )
        if invoice.status != "paid":
            with calling(f"GHL record payment of invoice {invoice_id}"):
                result = await self.ghl.record_invoice_payment(
                    self.loc, invoice_id, bodies.payment_for(invoice, self.order)
                )
            answer = result.invoice
            if answer is not None and answer.id == invoice_id and answer.status == "paid":
                self.paid_invoice = answer
        # find_invoice_order comes next and needs the record's link: read in this commit.
        await self.save(invoice_payment_recorded_at=utcnow(), read_link=True)

    async def find_invoice_order(self, invoice_id: str) -> None:
        # P's GHL handlers adopt the invoice's order when its OrderCreate arrives first.
        if not self.link_read:
            async with self.ctx.read() as session:
                record = await sync_repo.get(session, self.id)
            if record is not None and record.ghl_order_id:
                self.rec.ghl_order_id = record.ghl_order_id
                self.rec.ghl_order_source = record.ghl_order_source
        if self.rec.ghl_order_id:
            return
        paid_here = self.paid_invoice is not None and self.paid_invoice.id == invoice_id
        if paid_here and await self.order_of_payment(invoice_id):
            return
        with calling(f"GHL find the order of invoice {invoice_id}"):
            page = await self.ghl.list_orders(self.loc, source_id=invoice_id, limit=10)
            listed = [
                o
                for o in page.items
                if (o.source_id or (o.source.id if o.source else None)) == invoice_id
            ]
            ids = {o.id for o in listed}
            if not ids and not paid_here:  # (listed just now when paid here)
                txns = await self.ghl.list_transactions(self.loc, entity_id=invoice_id, limit=20)
                ids = {t.entity_id for t in txns.items if t.entity_type == "order" and t.entity_id}
        if len(ids) != 1:
            raise self.not_yet(
                f"GHL shows no order for invoice {invoice_id} yet",
                f"order {self.order.id}: GHL never showed an order for its paid invoice "
                f"{invoice_id} (looked by source id and by the invoice's transactions"
                + (f"; found several: {', '.join(sorted(ids))}" if ids else "")
                + ")",
            )
        ghl_order_id = ids.pop()
        await self.claim(ghl_order_id, "invoice")
        self.unfulfilled = any(
            o.id == ghl_order_id and o.fulfillment_status == "unfulfilled" for o in listed
        )

    async def order_of_payment(self, invoice_id: str) -> bool:
        """The order GHL made when this attempt's payment paid the invoice, from the invoice's
        transactions: one request tells both the order and the money on it, so the payment
        state needs no read of its own (`sync_state`). False when they show no single order
        yet (the caller looks in the order list)."""
        assert self.paid_invoice is not None
        reads_started = utcnow()
        with calling(f"GHL list transactions of invoice {invoice_id}"):
            listed = [t async for t in self.ghl.iter_transactions(self.loc, entity_id=invoice_id)]
        ids = {t.entity_id for t in listed if t.entity_type == "order" and t.entity_id}
        if len(ids) != 1:
            return False
        ghl_order_id = ids.pop()
        await self.claim(ghl_order_id, "invoice")
        self.seen = _Seen(
            order=order_made_from(self.paid_invoice, ghl_order_id),
            transactions=[t for t in listed if t.entity_id == ghl_order_id],
            reads_started=reads_started,
        )
        # GHL made it from this attempt's payment a moment ago (the invoice was unpaid until
        # then: GHL refuses to pay a paid invoice) and nobody else has its id: no fulfillment
        # of ours can exist (one is made only after the order is linked, and it was not).
        self.unfulfilled = True
        return True

    # --- fulfillment, cancellation, payment state ------------------------------------------------
    async def fulfill(self) -> None:
        order_id = self.rec.ghl_order_id
        assert order_id is not None
        existing: list[m.Fulfillment] = []
        if not self.unfulfilled:
            with calling(f"GHL list fulfillments of order {order_id}"):
                existing = await self.ghl.list_fulfillments(self.loc, order_id)
        if not existing:
            try:
                existing = [await self.create_fulfillment(order_id)]
            except PermanentFailure as exc:
                if not (self.unfulfilled and isinstance(exc.__cause__, GhlValidationError)):
                    raise
                # Refused although nothing said it was fulfilled: someone fulfilled it in the
                # meantime; keep theirs rather than fail.
                with calling(f"GHL list fulfillments of order {order_id}"):
                    existing = await self.ghl.list_fulfillments(self.loc, order_id)
                if not existing:
                    raise
        await self.save(ghl_fulfillment_id=existing[0].id)

    async def create_fulfillment(self, order_id: str) -> m.Fulfillment:
        """With the mapped prices when GHL made the order from our invoice (its items are the
        invoice's), else with the items GHL's order lists. A 4xx creates nothing, so after one
        the order is read and the fulfillment sent again with its own items."""
        from_our_invoice = self.rec.ghl_order_source == "invoice" and (
            self.ghl_order is None or self.ghl_order.id != order_id
        )
        if from_our_invoice:
            body = bodies.fulfillment_body(self.order, None, self.mapping)
            with calling(f"GHL create fulfillment for order {order_id}"):
                try:
                    return await self.ghl.create_fulfillment(self.loc, order_id, body)
                except GhlValidationError as exc:
                    log.warning(
                        "GHL refused the fulfillment with the invoice's prices; "
                        "reading the order's items",
                        extra={"ghl_order_id": order_id, "error": str(exc)},
                    )
        ghl_order = await self.fetch_ghl_order()
        body = bodies.fulfillment_body(self.order, ghl_order, self.mapping)
        with calling(f"GHL create fulfillment for order {order_id}"):
            return await self.ghl.create_fulfillment(self.loc, order_id, body)

    async def fetch_ghl_order(self) -> m.Order:
        order_id = self.rec.ghl_order_id
        assert order_id is not None
        if self.ghl_order is None or self.ghl_order.id != order_id:
            with calling(f"GHL get order {order_id}"):
                self.ghl_order = await self.ghl.get_order(self.loc, order_id)
        return self.ghl_order

    async def cancel(self) -> None:
        """Wizehire cancelled the order: void our unpaid invoice; leave paid money alone."""
        if not self.rec.ghl_invoice_id and self.rec.invoice_requested_at:
            found = await self.find_invoice()
            if found:
                await self.save(ghl_invoice_id=found)
        invoice_id = self.rec.ghl_invoice_id
        if invoice_id and not self.rec.invoice_voided_at:
            with calling(f"GHL get invoice {invoice_id}"):
                invoice = await self.ghl.get_invoice(self.loc, invoice_id)
            if invoice.status in _PAID_INVOICE or (invoice.amount_paid or 0) > 0:
                note = (
                    f"cancelled in Wizehire, but GHL invoice {invoice_id} has payments "
                    f"({invoice.amount_paid} {invoice.currency} paid): left as it is; "
                    f"refund through Wizehire if the money must go back"
                )
                if self.rec.note != note:
                    await self.save(note=note)
                if invoice.status == "paid" and not self.rec.ghl_order_id:
                    await self.find_invoice_order(invoice_id)  # its money is what Wizehire sees
                return
            if invoice.status != "void":
                with calling(f"GHL void invoice {invoice_id}"):
                    await self.ghl.void_invoice(self.loc, invoice_id)
            await self.save(invoice_voided_at=utcnow())
        elif self.rec.ghl_order_id and not invoice_id and not self.rec.note:
            await self.save(
                note=f"cancelled in Wizehire; GHL order {self.rec.ghl_order_id} "
                f"(from a GHL checkout) is left as it is"
            )

    async def sync_state(self) -> None:
        """Tell Wizehire where the order stands. With a GHL order or invoice, P's refresh reads
        GHL's current money (order, transactions, subscription), stores it and pushes; before
        that there is nothing in GHL to read: pending, or cancelled."""
        if self.rec.last_error or self.staged:
            await self.save(last_error=None)
        seen = self.seen
        if seen is not None and self.rec.ghl_order_id == seen.order.id:
            # GHL's answers since the payment tell the state the refresh would read again.
            await store_state_seen(
                self.ctx,
                self.id,
                order=seen.order,
                transactions=seen.transactions,
                reads_started=seen.reads_started,
            )
            return
        if self.rec.ghl_order_id or self.rec.ghl_invoice_id:
            await refresh_order_from_ghl(self.ctx, self.id)
            return
        if self.rec.wizehire_status == "cancelled" and self.rec.payment_status != "cancelled":
            await self.save(payment_status="cancelled")
        await push_order_state(self.ctx, self.id)
