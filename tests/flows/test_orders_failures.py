"""Flow 1 when it cannot or must not finish: each ends in a clear state an operator can act on,
and cancellations undo what can be undone in GHL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.flows.conftest import LOCATION_ID, FlowKit, default_mapping
from wizesync.db.models import EventStatus
from wizesync.inbox.replay import replay
from wizesync.mapping import Locations, Mapping, Product
from wizesync_sandbox.defaults import BOOST_PRICE_ID, BOOST_PRODUCT_ID


async def _checkout(flow: FlowKit, email: str = "pat@example.com") -> dict[str, Any]:
    answer = await flow.control.post(
        "/_sandbox/ghl/checkout",
        json={
            "location_id": LOCATION_ID,
            "items": [{"price_id": BOOST_PRICE_ID, "qty": 1}],
            "contact": {"email": email},
            "outcome": "paid",
        },
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["order"]


def _unknown_sku_order(flow: FlowKit) -> dict[str, Any]:
    return flow.order(
        items=[
            {"sku": "JOB-BOOST-30", "name": "Boost", "quantity": 1, "unit_amount": "100.00"},
            {"sku": "MYSTERY-SKU", "name": "Mystery", "quantity": 1, "unit_amount": "49.00"},
        ]
    )


async def test_unmapped_sku_goes_dead_naming_it_and_replays_after_a_mapping_fix(
    flow: FlowKit,
) -> None:
    order = _unknown_sku_order(flow)
    inbox_id = await flow.deliver_order("order.created", order)

    (event,) = await flow.process(inbox_id)

    assert event.status == EventStatus.DEAD
    assert "SKU MYSTERY-SKU is not in the mapping's products" in (event.last_error or "")
    assert event.attempts == 1  # not retried: only a human can fix it
    assert flow.invoices() == []
    record = await flow.sync_order(order["id"])
    assert record is not None and "MYSTERY-SKU" in (record.last_error or "")

    products = {
        **flow.services.mapping.products,
        "MYSTERY-SKU": Product(price_id=BOOST_PRICE_ID, product_id=BOOST_PRODUCT_ID),
    }
    flow.services.mapping = flow.services.mapping.model_copy(update={"products": products})
    assert await replay(flow.sessionmaker, inbox_id) == "queued"
    (event,) = await flow.process(inbox_id)

    assert event.status == EventStatus.DONE, event.last_error
    assert len(flow.invoices()) == 1
    record = await flow.sync_order(order["id"])
    assert record is not None and record.last_error is None


async def test_ambiguous_match_goes_dead_and_tells_slack(flow: FlowKit) -> None:
    first, second = await _checkout(flow), await _checkout(flow)
    order = flow.order()

    (event,) = await flow.process(await flow.deliver_order("order.created", order))

    assert event.status == EventStatus.DEAD
    assert (event.last_error or "").startswith("ambiguous match: 2 candidates")
    assert first["_id"] in event.last_error and second["_id"] in event.last_error
    assert flow.invoices() == []
    assert all(not flow.fulfillments(o["_id"]) for o in flow.orders())
    (message,) = flow.slack.matching(f"Order {order['id']}: 2 GHL orders match")
    assert first["_id"] in message and second["_id"] in message
    assert flow.order_syncs(order["id"]) == []


async def test_a_matched_order_is_not_matched_again_for_another_wizehire_order(
    flow: FlowKit,
) -> None:
    checkout = await _checkout(flow)
    first, second = flow.order(), flow.order()

    await flow.process(await flow.deliver_order("order.created", first))
    (event,) = await flow.process(await flow.deliver_order("order.created", second))

    assert event.status == EventStatus.DONE, event.last_error
    one, two = await flow.sync_order(first["id"]), await flow.sync_order(second["id"])
    assert one is not None and one.ghl_order_id == checkout["_id"]
    assert two is not None and two.ghl_order_source == "invoice"  # made its own


class TestMatchOnly:
    @pytest.fixture
    def flow_mapping(self) -> Mapping:
        return default_mapping(strategy="match_only")

    @pytest.fixture
    def flow_settings_overrides(self) -> dict[str, Any]:
        return {"worker_max_attempts": 3}

    async def test_no_matching_order_retries_then_dies_saying_why(self, flow: FlowKit) -> None:
        order = flow.order()

        (event,) = await flow.process(await flow.deliver_order("order.created", order))

        assert event.status == EventStatus.DEAD
        assert event.attempts == 3
        assert "no GHL order of contact" in (event.last_error or "")
        assert "strategy match_only: nothing is created" in (event.last_error or "")
        assert "gave up after 3 attempts" in (event.last_error or "")
        assert flow.invoices() == []

    async def test_order_appearing_later_is_matched(self, flow: FlowKit) -> None:
        order = flow.order()
        inbox_id = await flow.deliver_order("order.created", order)
        with pytest.raises(Exception, match="no GHL order of this contact matches"):
            await flow.invoke(inbox_id, attempt=1)
        checkout = await _checkout(flow)

        (event,) = await flow.process(inbox_id)

        assert event.status == EventStatus.DONE, event.last_error
        record = await flow.sync_order(order["id"])
        assert record is not None and record.ghl_order_id == checkout["_id"]
        assert len(flow.fulfillments(checkout["_id"])) == 1


async def test_explicit_order_with_another_amount_goes_dead(flow: FlowKit) -> None:
    checkout = await _checkout(flow)
    order = flow.order(
        ghl_order_id=checkout["_id"],
        amount="99.00",
        items=[{"sku": "JOB-BOOST-30", "name": "Boost", "quantity": 1, "unit_amount": "99.00"}],
    )

    (event,) = await flow.process(await flow.deliver_order("order.created", order))

    assert event.status == EventStatus.DEAD
    assert f"GHL order {checkout['_id']} does not match it (amount 149" in event.last_error
    assert flow.fulfillments(checkout["_id"]) == []


class TestNoRoute:
    @pytest.fixture
    def flow_mapping(self) -> Mapping:
        return default_mapping().model_copy(update={"locations": Locations()})

    async def test_order_without_a_location_goes_dead(self, flow: FlowKit) -> None:
        order = flow.order()

        (event,) = await flow.process(await flow.deliver_order("order.created", order))

        assert event.status == EventStatus.DEAD
        assert "no GHL location to send it to" in (event.last_error or "")
        assert "account acct_42 is not in the mapping's locations.accounts" in event.last_error
        assert flow.contacts() == []


class TestInvoiceNeverBecomesAnOrder:
    @pytest.fixture
    def flow_mapping(self) -> Mapping:
        return default_mapping(strategy="invoice")

    @pytest.fixture
    def flow_settings_overrides(self) -> dict[str, Any]:
        return {"worker_max_attempts": 3}

    async def test_dies_with_a_reason_that_says_so(
        self, flow: FlowKit, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # That GHL makes an order for a paid invoice is unconfirmed: here it does not.
        monkeypatch.setattr(flow.sb.invoices, "_order_for", lambda *args: None)
        order = flow.order()

        (event,) = await flow.process(await flow.deliver_order("order.created", order))

        assert event.status == EventStatus.DEAD
        (invoice,) = flow.invoices()
        assert f"GHL never showed an order for its paid invoice {invoice['_id']}" in (
            event.last_error or ""
        )
        assert "gave up after 3 attempts" in event.last_error
        assert invoice["status"] == "paid"
        assert len(flow.transactions(invoice["_id"])) == 1  # paid once, not once per attempt


class TestCancellation:
    @pytest.fixture
    def flow_mapping(self) -> Mapping:
        return default_mapping(strategy="invoice")

    async def test_cancelling_an_unpaid_order_voids_its_invoice(self, flow: FlowKit) -> None:
        order = flow.order(status="pending")
        created = await flow.deliver_order("order.created", order)
        cancelled = await flow.deliver_order("order.updated", {**order, "status": "cancelled"})

        events = await flow.process(created, cancelled)

        assert [e.status for e in events] == [EventStatus.DONE, EventStatus.DONE]
        (invoice,) = flow.invoices()
        assert invoice["status"] == "void"
        assert flow.orders() == []
        syncs = flow.order_syncs(order["id"])
        assert [c["body"]["payment_status"] for c in syncs] == ["pending", "cancelled"]
        assert syncs[-1]["body"]["ghl_invoice_id"] == invoice["_id"]
        record = await flow.sync_order(order["id"])
        assert record is not None and record.invoice_voided_at is not None

        again = await flow.deliver_order("order.updated", {**order, "status": "cancelled"})
        (event,) = await flow.process(again)
        assert event.status == EventStatus.DONE
        assert len(flow.order_syncs(order["id"])) == 2  # nothing changed, nothing sent

    async def test_cancelling_a_paid_order_leaves_the_money_and_says_so(
        self, flow: FlowKit
    ) -> None:
        order = flow.order()
        await flow.process(await flow.deliver_order("order.created", order))
        cancelled = await flow.deliver_order("order.updated", {**order, "status": "cancelled"})

        (event,) = await flow.process(cancelled)

        assert event.status == EventStatus.DONE, event.last_error
        (invoice,) = flow.invoices()
        assert invoice["status"] == "paid"
        record = await flow.sync_order(order["id"])
        assert record is not None and record.wizehire_status == "cancelled"
        assert f"GHL invoice {invoice['_id']} has payments" in (record.note or "")
        assert record.payment_status == "paid"
        assert flow.order_syncs(order["id"])[-1]["body"]["payment_status"] == "paid"

    async def test_cancelled_before_anything_was_made_creates_nothing(self, flow: FlowKit) -> None:
        order = flow.order(status="cancelled")

        (event,) = await flow.process(await flow.deliver_order("order.created", order))

        assert event.status == EventStatus.DONE, event.last_error
        assert flow.contacts() == [] and flow.invoices() == []
        (sync,) = flow.order_syncs(order["id"])
        assert sync["body"]["payment_status"] == "cancelled"
