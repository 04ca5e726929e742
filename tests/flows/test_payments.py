"""Flow 2 end to end: GHL order/invoice webhooks -> the order's `order.advance` -> GHL's current
data -> Wizehire, patched only when the payment state changed; unknown GHL orders kept and
reported once."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.flows.conftest import LOCATION_ID, FlowKit, default_mapping
from tests.flows.support_advance import process_with_advances, run_ghl
from tests.flows.support_payments import (
    applied_syncs,
    checkout,
    deliver_ghl,
    ghl_webhooks,
    last_sync,
    outbox_mark,
    pay_in_ghl,
    sync_bodies,
    synced_checkout,
)
from wizesync.db.models import EventStatus
from wizesync.db.sync_models import UnmatchedGhlOrder
from wizesync.ghl import models as m
from wizesync.mapping import Mapping


async def test_checkout_payment_made_after_the_sync_reaches_wizehire_as_paid(
    flow: FlowKit,
) -> None:
    synced = await synced_checkout(flow, outcome="pending")
    assert [b["payment_status"] for b in sync_bodies(flow, synced.wizehire_order_id)] == ["pending"]
    mark = outbox_mark(flow)

    await pay_in_ghl(flow, synced.ghl_order_id)
    webhooks = ghl_webhooks(flow, mark)
    assert [w["type"] for w in webhooks] == ["OrderStatusUpdate"]
    events = await process_with_advances(flow, *[await deliver_ghl(flow, w) for w in webhooks])

    assert [e.status for e in events] == [EventStatus.DONE], [e.last_error for e in events]
    (txn,) = flow.transactions(synced.ghl_order_id)
    bodies = sync_bodies(flow, synced.wizehire_order_id)
    assert [b["payment_status"] for b in bodies] == ["pending", "paid"]
    assert bodies[-1]["amount_paid"] == "149.00"
    assert bodies[-1]["amount_refunded"] == "0.00"
    assert bodies[-1]["currency"] == "USD"
    assert bodies[-1]["ghl_transaction_ids"] == [txn["_id"]]
    wizehire_side = flow.wizehire_order(synced.wizehire_order_id)
    assert wizehire_side is not None and wizehire_side["ghl_sync"]["payment_status"] == "paid"
    record = await flow.sync_order(synced.wizehire_order_id)
    assert record is not None
    assert (record.payment_status, record.ghl_transaction_ids) == ("paid", [txn["_id"]])
    assert record.ghl_checked_at is not None
    assert flow.slack.matching(f"Order {synced.wizehire_order_id}: payment status pending -> paid")


class TestInvoicePaidInGhl:
    @pytest.fixture
    def flow_mapping(self) -> Mapping:
        return default_mapping(strategy="invoice")

    async def _unpaid_invoice_order(self, flow: FlowKit) -> tuple[str, dict[str, Any]]:
        order = flow.order(status="pending")
        (event,) = await flow.process(await flow.deliver_order("order.created", order))
        assert event.status == EventStatus.DONE, event.last_error
        (invoice,) = flow.invoices(order["id"])
        return order["id"], invoice

    async def _pay(self, flow: FlowKit, invoice_id: str, amount: str | None = None) -> None:
        await flow.services.ghl.record_invoice_payment(
            LOCATION_ID,
            invoice_id,
            m.RecordInvoicePayment(mode="cash", amount=None if amount is None else Decimal(amount)),
        )

    async def test_invoice_paid_in_ghl_links_its_order_and_syncs_paid(self, flow: FlowKit) -> None:
        wizehire_id, invoice = await self._unpaid_invoice_order(flow)
        mark = outbox_mark(flow)
        await self._pay(flow, invoice["_id"])
        webhooks = ghl_webhooks(flow, mark)
        assert [w["type"] for w in webhooks] == ["InvoicePaid", "OrderCreate", "OrderStatusUpdate"]

        events = await process_with_advances(flow, *[await deliver_ghl(flow, w) for w in webhooks])

        assert {e.status for e in events} == {EventStatus.DONE}, [e.last_error for e in events]
        (ghl_order,) = flow.orders()
        (txn,) = flow.transactions(ghl_order["_id"])
        record = await flow.sync_order(wizehire_id)
        assert record is not None
        assert (record.ghl_order_id, record.ghl_order_source) == (ghl_order["_id"], "invoice")
        body = last_sync(flow, wizehire_id)
        assert (
            body["payment_status"],
            body["amount_paid"],
            body["ghl_order_id"],
            body["ghl_invoice_id"],
            body["ghl_transaction_ids"],
        ) == ("paid", "149.00", ghl_order["_id"], invoice["_id"], [txn["_id"]])
        # The three webhooks' advances ran one after the other on the order's line: the first
        # made the fulfillment and the paid sync, the others found them done.
        assert [b["payment_status"] for b in applied_syncs(flow, wizehire_id)] == [
            "pending",
            "paid",
        ]
        assert len(flow.fulfillments(ghl_order["_id"])) == 1
        assert record.ghl_fulfillment_id == flow.fulfillments(ghl_order["_id"])[0]["_id"]
        async with flow.sessionmaker() as session:
            assert (await session.execute(select(UnmatchedGhlOrder))).scalars().all() == []

    async def test_partial_invoice_payment_is_pending_with_the_amount_paid(
        self, flow: FlowKit
    ) -> None:
        wizehire_id, invoice = await self._unpaid_invoice_order(flow)
        mark = outbox_mark(flow)
        await self._pay(flow, invoice["_id"], "49.00")
        (webhook,) = ghl_webhooks(flow, mark)
        assert webhook["type"] == "InvoicePartiallyPaid"

        event = await run_ghl(flow, webhook)

        assert event.status == EventStatus.DONE, event.last_error
        body = last_sync(flow, wizehire_id)
        assert (body["payment_status"], body["amount_paid"]) == ("pending", "49.00")
        assert len(body["ghl_transaction_ids"]) == 1

    async def test_invoice_voided_in_ghl_is_cancelled_in_wizehire(self, flow: FlowKit) -> None:
        wizehire_id, invoice = await self._unpaid_invoice_order(flow)
        mark = outbox_mark(flow)
        await flow.services.ghl.void_invoice(LOCATION_ID, invoice["_id"])
        (webhook,) = ghl_webhooks(flow, mark)

        event = await run_ghl(flow, webhook)

        assert event.status == EventStatus.DONE, event.last_error
        assert last_sync(flow, wizehire_id)["payment_status"] == "cancelled"

    async def test_events_twice_and_shuffled_end_paid_with_one_paid_patch(
        self, flow: FlowKit
    ) -> None:
        wizehire_id, invoice = await self._unpaid_invoice_order(flow)
        mark = outbox_mark(flow)
        await self._pay(flow, invoice["_id"])
        paid, create, status_update = ghl_webhooks(flow, mark)
        # OrderStatusUpdate before OrderCreate, InvoicePaid twice, everything late.
        schedule = [status_update, paid, create, paid, status_update, create]

        for webhook in schedule:
            await run_ghl(flow, webhook)

        statuses = [b["payment_status"] for b in sync_bodies(flow, wizehire_id)]
        assert statuses == ["pending", "paid"]
        assert len(flow.invoices(wizehire_id)) == 1
        assert last_sync(flow, wizehire_id)["ghl_order_id"] == flow.orders()[0]["_id"]


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_any_order_and_repetition_of_an_orders_events_converges(
    flow: FlowKit, data: st.DataObject
) -> None:
    """Examples share the sandbox and database: each makes its own orders."""
    synced = await synced_checkout(flow, outcome="pending")
    mark = outbox_mark(flow)
    await pay_in_ghl(flow, synced.ghl_order_id)
    events = ghl_webhooks(flow, mark)
    created = {**events[0], "type": "OrderCreate", "status": "pending"}  # GHL's earlier event
    pool = [*events, created]
    schedule = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=6))
    if not any(e is not created for e in schedule):
        schedule.append(events[0])

    for webhook in schedule:
        await run_ghl(flow, webhook)

    statuses = [b["payment_status"] for b in sync_bodies(flow, synced.wizehire_order_id)]
    assert statuses == ["pending", "paid"]
    (txn,) = flow.transactions(synced.ghl_order_id)
    assert last_sync(flow, synced.wizehire_order_id)["ghl_transaction_ids"] == [txn["_id"]]


async def test_unknown_ghl_order_is_recorded_and_reported_once(flow: FlowKit) -> None:
    mark = outbox_mark(flow)
    bought = await checkout(flow, outcome="paid")
    webhooks = ghl_webhooks(flow, mark)
    assert [w["type"] for w in webhooks] == ["OrderCreate", "OrderStatusUpdate"]

    ids = [await deliver_ghl(flow, w) for w in [*webhooks, webhooks[1]]]
    events = await flow.process(*ids)

    assert {e.status for e in events} == {EventStatus.DONE}, [e.last_error for e in events]
    async with flow.sessionmaker() as session:
        (row,) = (await session.execute(select(UnmatchedGhlOrder))).scalars().all()
    assert (row.ghl_location_id, row.ghl_order_id) == (LOCATION_ID, bought["order"]["_id"])
    assert row.reported_at is not None and row.resolved_at is None
    assert row.last_event_type == "OrderStatusUpdate"
    assert row.snapshot is not None and row.snapshot["_id"] == bought["order"]["_id"]
    assert len(flow.slack.matching(f"GHL order {bought['order']['_id']} matches no")) == 1
    assert flow.wizehire_calls(method="PATCH") == []


async def test_unknown_invoice_event_is_done_without_touching_wizehire(flow: FlowKit) -> None:
    body = {
        "type": "InvoicePaid",
        "_id": uuid.uuid4().hex[:24],
        "altId": LOCATION_ID,
        "altType": "location",
        "status": "paid",
    }

    (event,) = await flow.process(await deliver_ghl(flow, body))

    assert event.status == EventStatus.DONE, event.last_error
    assert flow.wizehire_calls(method="PATCH") == []
