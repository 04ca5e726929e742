"""Flow 1 skips the GHL reads whose answer the attempt already has, and stays safe without them:
the invoice it just created (unpaid), the order GHL made from that invoice (its items are the
invoice's; a refusal falls back to GHL's own items), its fulfillments (the list that found the
order says unfulfilled). Crash/duplicate safety of the same steps: test_orders_idempotency."""

from __future__ import annotations

import re

import pytest

from tests.flows.conftest import LOCATION_ID, FlowKit, default_mapping
from tests.flows.test_orders_idempotency import assert_one_of_each
from wizesync.db.models import EventStatus
from wizesync.inbox.context import RetryLater
from wizesync.mapping import Mapping
from wizesync_sandbox.defaults import BOOST_PRICE_ID


@pytest.fixture
def flow_mapping() -> Mapping:
    return default_mapping(strategy="invoice")


def ghl_calls_until_fulfilled(flow: FlowKit, fulfillment_posts: int = 1) -> list[str]:
    """`METHOD /path` (ids as {id}) of every GHL call up to the fulfillment's creation (the
    `fulfillment_posts`-th POST of one; 0: every call)."""
    assert flow.transport is not None
    calls = []
    for method, path, _ in flow.transport.sent:
        if not path.startswith("/ghl/"):
            continue
        calls.append(f"{method} " + re.sub(r"/[0-9a-f]{16,}", "/{id}", path.removeprefix("/ghl")))
        if method == "POST" and path.endswith("/fulfillments"):
            fulfillment_posts -= 1
            if fulfillment_posts == 0:
                break
    return calls


async def test_a_paid_order_reads_nothing_it_already_knows(flow: FlowKit) -> None:
    order = flow.order()
    inbox_id = await flow.deliver_order("order.created", order)

    await flow.invoke(inbox_id)

    assert ghl_calls_until_fulfilled(flow, fulfillment_posts=0) == [
        "POST /contacts/upsert",
        "POST /invoices/",
        "POST /invoices/{id}/record-payment",  # no GET of the invoice just created
        "GET /payments/transactions",  # GHL's order for it, and the money on it
        "POST /payments/orders/{id}/fulfillments",  # no list of fulfillments, no GET order
    ]  # and no refresh: the payment state is what those answers said
    (ghl_order,) = flow.orders()
    (sent,) = flow.ghl_requests("POST", f"/payments/orders/{ghl_order['_id']}/fulfillments")
    assert sent["items"] == [{"priceId": BOOST_PRICE_ID, "qty": 1}]  # the invoice's prices
    assert_one_of_each(flow, order["id"])


async def test_fulfillment_refused_with_the_invoice_prices_is_sent_with_the_orders_items(
    flow: FlowKit,
) -> None:
    """GHL refuses the mapped prices (4xx: nothing created): the order is read, and the
    fulfillment is sent again with the items GHL's order lists."""
    rule = flow.fault(
        path="/ghl/payments/orders/*/fulfillments", method="POST", status=422, times=1
    )
    order = flow.order()
    inbox_id = await flow.deliver_order("order.created", order)

    await flow.invoke(inbox_id)

    assert rule.hits == 1
    calls = ghl_calls_until_fulfilled(flow, fulfillment_posts=2)
    assert calls[-3:] == [
        "POST /payments/orders/{id}/fulfillments",
        "GET /payments/orders/{id}",
        "POST /payments/orders/{id}/fulfillments",
    ]
    assert_one_of_each(flow, order["id"])


async def test_a_retry_after_the_order_was_linked_lists_fulfillments_first(
    flow: FlowKit,
) -> None:
    """The attempt that linked the order failed before fulfilling: the next one does not know
    the order is unfulfilled, so it looks before creating (and reads the invoice it did not
    create in this attempt)."""
    flow.fault(path="/ghl/payments/orders/*/fulfillments", method="POST", status=500, times=8)
    order = flow.order()
    inbox_id = await flow.deliver_order("order.created", order)
    with pytest.raises(RetryLater):
        await flow.invoke(inbox_id)
    flow.clear_faults()
    assert flow.transport is not None
    flow.transport.sent.clear()

    await flow.invoke(inbox_id, attempt=2)

    assert ghl_calls_until_fulfilled(flow) == [
        "GET /payments/orders/{id}/fulfillments",
        "POST /payments/orders/{id}/fulfillments",
    ]
    assert_one_of_each(flow, order["id"])


async def test_the_routed_location_is_stored_with_the_first_save(flow: FlowKit) -> None:
    """The location rides along with the next save; when a step fails first, with the error
    noted on the record."""
    flow.fault(path="/ghl/contacts/upsert", method="POST", status=500, times=8)
    order = flow.order()
    inbox_id = await flow.deliver_order("order.created", order)

    with pytest.raises(RetryLater):
        await flow.invoke(inbox_id)

    record = await flow.sync_order(order["id"])
    assert record is not None
    assert record.ghl_location_id == LOCATION_ID
    assert record.last_error


async def test_a_cancelled_order_with_nothing_made_still_stores_its_location(
    flow: FlowKit,
) -> None:
    order = flow.order(status="cancelled")
    (event,) = await flow.process(await flow.deliver_order("order.created", order))

    assert event.status == EventStatus.DONE, event.last_error
    record = await flow.sync_order(order["id"])
    assert record is not None and record.ghl_location_id == LOCATION_ID
