"""Flow 1 happy paths, one per strategy, end to end: a Wizehire order.created through ingest and
a real Worker, the GHL and Wizehire clients over HTTP to the sandbox, both fakes' state checked."""

from __future__ import annotations

from typing import Any

import pytest

from tests.flows.conftest import LOCATION_ID, FlowKit, default_mapping
from wizesync.db.models import EventStatus
from wizesync.flows.payments.wizehire_sync import state_digest
from wizesync.mapping import Mapping
from wizesync.wizehire.client import idempotency_key
from wizesync_sandbox.defaults import BOOST_PRICE_ID, BOOST_PRODUCT_ID

CUSTOMER_EMAIL = "pat@example.com"


def assert_one_fulfillment(flow: FlowKit, ghl_order_id: str, wizehire_order_id: str) -> None:
    fulfillments = flow.fulfillments(ghl_order_id)
    assert len(fulfillments) == 1
    (fulfillment,) = fulfillments
    assert [(i["price"]["_id"], i["qty"]) for i in fulfillment["items"]] == [(BOOST_PRICE_ID, 1)]
    assert fulfillment["trackings"] == [
        {
            "trackingNumber": wizehire_order_id,
            "shippingCarrier": "Wizehire",
            "trackingUrl": f"https://app.wizehire.com/orders/{wizehire_order_id}",
        }
    ]
    (sent,) = flow.ghl_requests("POST", f"/payments/orders/{ghl_order_id}/fulfillments")
    assert sent["notifyCustomer"] is True
    assert sent["items"] == [{"priceId": BOOST_PRICE_ID, "qty": 1}]


def assert_synced(flow: FlowKit, wizehire_order_id: str, **expected: Any) -> dict[str, Any]:
    """Exactly one sync PATCH, with the expected fields and the deterministic key."""
    calls = flow.order_syncs(wizehire_order_id)
    assert len(calls) == 1, [c["body"] for c in calls]
    body = calls[0]["body"]
    for name, value in expected.items():
        assert body[name] == value, (name, body)
    assert calls[0]["idempotency_key"] == idempotency_key(
        wizehire_order_id, "sync", state_digest(body)
    )
    assert body["synced_at"].endswith("Z")
    return body


class TestInvoiceStrategy:
    @pytest.fixture
    def flow_mapping(self) -> Mapping:
        return default_mapping(strategy="invoice")

    async def test_paid_order_becomes_invoice_order_and_fulfillment(self, flow: FlowKit) -> None:
        order = flow.order()
        inbox_id = await flow.deliver_order("order.created", order)

        (event,) = await flow.process(inbox_id)

        assert event.status == EventStatus.DONE, event.last_error
        contacts = flow.contacts()
        assert [c["email"] for c in contacts] == [CUSTOMER_EMAIL]
        (invoice,) = flow.invoices()
        assert invoice["name"] == f"Wizehire order {order['id']}"
        assert invoice["status"] == "paid"
        assert invoice["contactDetails"]["id"] == contacts[0]["id"]
        assert [
            (i["priceId"], i["productId"], i["qty"], i["amount"]) for i in invoice["invoiceItems"]
        ] == [(BOOST_PRICE_ID, BOOST_PRODUCT_ID, 1, 149)]
        (ghl_order,) = flow.orders()
        assert ghl_order["source"]["type"] == "invoice"
        assert ghl_order["source"]["id"] == invoice["_id"]
        assert_one_fulfillment(flow, ghl_order["_id"], order["id"])
        (txn,) = flow.transactions(ghl_order["_id"])
        body = assert_synced(
            flow,
            order["id"],
            ghl_location_id=LOCATION_ID,
            ghl_order_id=ghl_order["_id"],
            ghl_invoice_id=invoice["_id"],
            payment_status="paid",
            amount_paid="149.00",
            amount_refunded="0.00",
            currency="USD",
            ghl_transaction_ids=[txn["_id"]],
        )
        assert body["ghl_fulfillment_id"] == flow.fulfillments(ghl_order["_id"])[0]["_id"]
        wizehire_side = flow.wizehire_order(order["id"])
        assert wizehire_side is not None
        assert wizehire_side["ghl_sync"]["payment_status"] == "paid"

        record = await flow.sync_order(order["id"])
        assert record is not None
        assert (
            record.ghl_contact_id,
            record.ghl_invoice_id,
            record.ghl_order_id,
            record.ghl_order_source,
        ) == (contacts[0]["id"], invoice["_id"], ghl_order["_id"], "invoice")
        assert record.invoice_payment_recorded_at is not None
        assert record.last_synced_state == {k: v for k, v in body.items() if k != "synced_at"}
        assert record.last_error is None

    async def test_pending_order_gets_an_unpaid_invoice_then_paid_update_finishes_it(
        self, flow: FlowKit
    ) -> None:
        order = flow.order(status="pending")
        first = await flow.deliver_order("order.created", order)
        (event,) = await flow.process(first)
        assert event.status == EventStatus.DONE, event.last_error
        (invoice,) = flow.invoices()
        assert invoice["status"] != "paid"
        assert flow.orders() == []
        assert [c["body"]["payment_status"] for c in flow.order_syncs(order["id"])] == ["pending"]

        second = await flow.deliver_order("order.updated", {**order, "status": "paid"})
        (event,) = await flow.process(second)

        assert event.status == EventStatus.DONE, event.last_error
        assert len(flow.invoices()) == 1
        (ghl_order,) = flow.orders()
        assert_one_fulfillment(flow, ghl_order["_id"], order["id"])
        syncs = flow.order_syncs(order["id"])
        assert [c["body"]["payment_status"] for c in syncs] == ["pending", "paid"]
        assert syncs[1]["body"]["ghl_order_id"] == ghl_order["_id"]
        assert flow.slack.matching(f"Order {order['id']}: payment status pending -> paid")


async def _checkout(
    flow: FlowKit, *, email: str = CUSTOMER_EMAIL, outcome: str = "paid"
) -> dict[str, Any]:
    """A customer buys the boost through a GHL checkout (funnel), outside the service."""
    answer = await flow.control.post(
        "/_sandbox/ghl/checkout",
        json={
            "location_id": LOCATION_ID,
            "items": [{"price_id": BOOST_PRICE_ID, "qty": 1}],
            "contact": {"email": email, "firstName": "Pat"},
            "outcome": outcome,
        },
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["order"]


async def test_match_strategy_uses_the_checkout_order(flow: FlowKit) -> None:
    checkout = await _checkout(flow)
    order = flow.order()
    inbox_id = await flow.deliver_order("order.created", order)

    (event,) = await flow.process(inbox_id)

    assert event.status == EventStatus.DONE, event.last_error
    assert flow.invoices() == []
    assert [o["_id"] for o in flow.orders()] == [checkout["_id"]]
    assert len(flow.contacts()) == 1
    assert_one_fulfillment(flow, checkout["_id"], order["id"])
    (txn,) = flow.transactions(checkout["_id"])
    assert_synced(
        flow,
        order["id"],
        ghl_order_id=checkout["_id"],
        ghl_invoice_id=None,
        payment_status="paid",
        amount_paid="149.00",
        ghl_transaction_ids=[txn["_id"]],
    )
    record = await flow.sync_order(order["id"])
    assert record is not None and record.ghl_order_source == "matched"


async def test_explicit_ghl_order_id_is_verified_and_used(flow: FlowKit) -> None:
    checkout = await _checkout(flow, email="someone-else@example.com")
    order = flow.order(ghl_order_id=checkout["_id"])
    inbox_id = await flow.deliver_order("order.created", order)

    (event,) = await flow.process(inbox_id)

    assert event.status == EventStatus.DONE, event.last_error
    assert flow.invoices() == []
    assert [o["_id"] for o in flow.orders()] == [checkout["_id"]]
    assert_one_fulfillment(flow, checkout["_id"], order["id"])
    assert_synced(flow, order["id"], ghl_order_id=checkout["_id"], payment_status="paid")
    record = await flow.sync_order(order["id"])
    assert record is not None and record.ghl_order_source == "explicit"


async def test_account_table_routes_to_its_location(flow: FlowKit) -> None:
    other = flow.sb.store.add_location(name="Other plumbing", pit=True)["id"]
    mapping = flow.services.mapping
    flow.services.mapping = mapping.model_copy(
        update={"locations": mapping.locations.model_copy(update={"accounts": {"acct_77": other}})}
    )
    order = flow.order(account_id="acct_77")

    (event,) = await flow.process(await flow.deliver_order("order.created", order))

    assert event.status == EventStatus.DONE, event.last_error
    record = await flow.sync_order(order["id"])
    assert record is not None and record.ghl_location_id == other
    assert [c["locationId"] for c in flow.sb.store.contacts.values()] == [other]
    assert [i["altId"] for i in flow.sb.store.invoices.values()] == [other]
    assert flow.order_syncs(order["id"])[0]["body"]["ghl_location_id"] == other
