"""Flow 1 creates nothing twice: duplicate deliveries, order.created + order.updated, answers lost
after GHL did the work, and a worker killed between "invoice created" and "fulfillment created"."""

from __future__ import annotations

import pytest

from tests.flows.conftest import FlowKit, default_mapping
from tests.support.waiting import eventually
from wizesync.db.models import EventStatus
from wizesync.inbox.context import RetryLater
from wizesync.mapping import Mapping


@pytest.fixture
def flow_mapping() -> Mapping:
    return default_mapping(strategy="invoice")


def assert_one_of_each(flow: FlowKit, wizehire_order_id: str) -> None:
    """One contact, invoice, GHL order, payment and fulfillment; Wizehire told once, paid."""
    assert len(flow.contacts()) == 1
    (invoice,) = flow.invoices(wizehire_order_id)
    assert invoice["status"] == "paid"
    (ghl_order,) = flow.orders()
    assert ghl_order["source"] == {"type": "invoice", "id": invoice["_id"], "name": invoice["name"]}
    assert len(flow.transactions(ghl_order["_id"])) == 1  # the payment was recorded once
    assert len(flow.fulfillments(ghl_order["_id"])) == 1
    syncs = flow.order_syncs(wizehire_order_id)
    # Retries of one PATCH carry one key and one body; Wizehire applied it once.
    assert len({c["idempotency_key"] for c in syncs}) == 1
    assert len([c for c in syncs if not c.get("replayed")]) == 1
    assert syncs[-1]["body"]["payment_status"] == "paid"
    assert syncs[-1]["body"]["ghl_order_id"] == ghl_order["_id"]


async def test_same_order_created_delivered_twice_makes_one_of_each(flow: FlowKit) -> None:
    order = flow.order()
    first = await flow.deliver_order("order.created", order)
    second = await flow.deliver_order("order.created", order)  # a new webhook-id, same order

    events = await flow.process(first, second)

    assert [e.status for e in events] == [EventStatus.DONE, EventStatus.DONE]
    assert_one_of_each(flow, order["id"])


async def test_same_webhook_id_twice_is_one_event(flow: FlowKit) -> None:
    order = flow.order()
    first = await flow.deliver_order("order.created", order, event_id="evt_same")
    second = await flow.deliver_order("order.created", order, event_id="evt_same")

    assert first == second
    await flow.process(first)
    assert_one_of_each(flow, order["id"])


async def test_created_then_updated_makes_one_of_each(flow: FlowKit) -> None:
    order = flow.order()
    created = await flow.deliver_order("order.created", order)
    updated = await flow.deliver_order("order.updated", {**order, "metadata": {"note": "edited"}})

    events = await flow.process(created, updated)

    assert [e.status for e in events] == [EventStatus.DONE, EventStatus.DONE]
    assert_one_of_each(flow, order["id"])
    record = await flow.sync_order(order["id"])
    assert record is not None and record.order_snapshot["metadata"] == {"note": "edited"}


async def test_late_older_event_does_not_undo_a_newer_one(flow: FlowKit) -> None:
    order = flow.order(status="pending")
    newer = await flow.deliver_order(
        "order.updated", {**order, "status": "paid"}, timestamp="2026-11-27T12:05:00Z"
    )
    older = await flow.deliver_order("order.created", order, timestamp="2026-11-27T12:00:00Z")

    await flow.process(newer, older)

    record = await flow.sync_order(order["id"])
    assert record is not None and record.wizehire_status == "paid"
    assert record.order_snapshot["status"] == "paid"
    assert_one_of_each(flow, order["id"])


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/ghl/invoices/", "POST"),
        ("/ghl/invoices/*/record-payment", "POST"),
        ("/ghl/payments/orders/*/fulfillments", "POST"),
        ("/wizehire/v1/orders/*/sync", "PATCH"),
    ],
)
async def test_answer_lost_after_the_work_is_done_creates_nothing_twice(
    flow: FlowKit, path: str, method: str
) -> None:
    """GHL (or Wizehire) did the work, then answered 500: the retry looks before creating."""
    rule = flow.fault(path=path, method=method, status=500, phase="after", times=1)
    order = flow.order()

    (event,) = await flow.process(await flow.deliver_order("order.created", order))

    assert event.status == EventStatus.DONE, event.last_error
    assert rule.hits == 1
    assert_one_of_each(flow, order["id"])


def _invoice_exists(flow: FlowKit, order_id: str) -> bool:
    return bool(flow.invoices(order_id))


def _invoice_paid(flow: FlowKit, order_id: str) -> bool:
    return any(i["status"] == "paid" for i in flow.invoices(order_id))


def _fulfilled(flow: FlowKit, order_id: str) -> bool:
    return any(flow.fulfillments(o["_id"]) for o in flow.orders())


@pytest.mark.parametrize(
    ("path", "done", "lost"),
    [
        ("/ghl/invoices/", _invoice_exists, "ghl_invoice_id"),
        ("/ghl/invoices/*/record-payment", _invoice_paid, "invoice_payment_recorded_at"),
        ("/ghl/payments/orders/*/fulfillments", _fulfilled, "ghl_fulfillment_id"),
    ],
    ids=["invoice-created", "payment-recorded", "fulfillment-created"],
)
async def test_worker_killed_mid_step_resumes_without_duplicates(
    flow: FlowKit, path: str, done: object, lost: str
) -> None:
    """GHL does the work and then never answers; the worker is killed (its attempt cancelled,
    the event handed back) before anything of the answer reaches the sync record. A new worker
    finishes the order with one invoice and one fulfillment."""
    rule = flow.fault(
        path=path, method="POST", timeout=True, hang_seconds=120, phase="after", times=1
    )
    order = flow.order()
    inbox_id = await flow.deliver_order("order.created", order)

    async def ghl_did_it() -> bool:
        return rule.hits == 1 and done(flow, order["id"])  # type: ignore[operator]

    worker = flow.worker()
    worker.start()
    await eventually(ghl_did_it, what=f"GHL to have done {path}")
    await worker.stop(grace_seconds=0.1)  # the kill: the hanging attempt is cancelled

    record = await flow.sync_order(order["id"])
    assert record is not None
    assert getattr(record, lost) is None  # GHL did it, but the sync record never heard
    assert record.ghl_fulfillment_id is None
    (finished,) = await flow.process(inbox_id)

    assert finished.status == EventStatus.DONE, finished.last_error
    assert_one_of_each(flow, order["id"])


class TestTwoOrdersOfOneCustomer:
    @pytest.fixture
    def flow_mapping(self) -> Mapping:
        return default_mapping(strategy="match_or_invoice")

    async def test_an_order_made_from_our_invoice_is_never_matched_to_another_order(
        self, flow: FlowKit
    ) -> None:
        """Order A's invoice is paid and GHL made its order, but A has not linked it yet (the
        lookup failed). Order B of the same customer and amount must not take it."""
        first, second = flow.order(), flow.order()
        a = await flow.deliver_order("order.created", first)
        matching = flow.services.mapping
        # A goes straight to its invoice (no match step to eat the fault), B matches.
        flow.services.mapping = default_mapping(strategy="invoice")
        # Its order is looked up in the paid invoice's transactions (else the order list).
        flow.fault(path="/ghl/payments/transactions", method="GET", status=500, times=4)
        flow.fault(path="/ghl/payments/orders", method="GET", status=500, times=4)
        with pytest.raises(RetryLater):
            await flow.invoke(a)
        flow.services.mapping = matching
        a_record = await flow.sync_order(first["id"])
        assert a_record is not None and a_record.ghl_order_id is None
        (a_order,) = flow.orders()
        assert a_order["source"]["id"] == a_record.ghl_invoice_id

        (b_event,) = await flow.process(await flow.deliver_order("order.created", second))
        (a_event,) = await flow.process(a)

        assert (a_event.status, b_event.status) == (EventStatus.DONE, EventStatus.DONE)
        assert len(flow.contacts()) == 1 and len(flow.invoices()) == 2
        one, two = await flow.sync_order(first["id"]), await flow.sync_order(second["id"])
        assert one is not None and two is not None
        assert one.ghl_order_id == a_order["_id"]
        assert two.ghl_order_id not in (None, a_order["_id"])
        assert (one.ghl_order_source, two.ghl_order_source) == ("invoice", "invoice")
