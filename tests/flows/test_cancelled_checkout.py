"""A Wizehire order cancelled while GHL captured nothing is `cancelled` in Wizehire, also when it
was matched to a GHL checkout order (nothing of ours to void, the GHL order stays open); money
captured keeps its paid / refunded state. Plus the pure rules behind it and behind coalescing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.flows.conftest import LOCATION_ID, SAMPLE_SKU, FlowKit
from wizesync.db.models import EventStatus
from wizesync.db.sync_models import SyncOrder
from wizesync.flows.payments.advance import checked_since, nothing_left
from wizesync.flows.payments.payment_state import compute_payment_state
from wizesync.ghl import models as m
from wizesync.mapping import Mapping
from wizesync_sandbox.defaults import BOOST_PRICE_ID


@pytest.mark.parametrize(("outcome", "expected"), [("pending", "cancelled"), ("paid", "paid")])
async def test_cancelled_order_matched_to_a_checkout_reports_what_was_captured(
    flow: FlowKit, outcome: str, expected: str
) -> None:
    email = f"matched-{outcome}@example.com"
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
    ghl_order = answer.json()["order"]
    base = flow.order(status="paid" if outcome == "paid" else "pending")
    order = {
        **base,
        "customer": {**base["customer"], "email": email},
        "items": [
            {
                "sku": SAMPLE_SKU,
                "name": "Job ad boost, 30 days",
                "quantity": 1,
                "unit_amount": "149.00",
            }
        ],
    }
    created = await flow.deliver_order("order.created", order)
    cancelled = await flow.deliver_order("order.updated", {**order, "status": "cancelled"})

    events = await flow.process(created, cancelled)

    assert [e.status for e in events] == [EventStatus.DONE] * 2, [e.last_error for e in events]
    record = await flow.sync_order(order["id"])
    assert record is not None
    assert (record.ghl_order_id, record.ghl_order_source) == (ghl_order["_id"], "matched")
    assert record.wizehire_status == "cancelled" and record.payment_status == expected
    assert flow.invoices() == []  # nothing of ours was made, nothing voided
    (still,) = [o for o in flow.orders() if o["_id"] == ghl_order["_id"]]
    assert still["status"] == ghl_order["status"]  # the checkout order is left as it is
    bodies = [c["body"] for c in flow.order_syncs(order["id"]) if not c.get("replayed")]
    assert bodies[-1]["payment_status"] == expected
    assert [b["payment_status"] for b in bodies] == (
        ["pending", "cancelled"] if expected == "cancelled" else ["paid"]
    )


# --- the pure rules ----------------------------------------------------------------------------

MAPPING = Mapping()


def _order(status: str = "pending") -> m.Order:
    return m.Order.model_validate({"_id": "o1", "amount": 149, "currency": "USD", "status": status})


def _txn(status: str, refunded: str = "0") -> m.Transaction:
    return m.Transaction.model_validate(
        {
            "_id": f"t_{status}",
            "amount": 149,
            "amountRefunded": refunded,
            "currency": "USD",
            "status": status,
            "entityId": "o1",
            "entityType": "order",
            "createdAt": "2026-11-27T12:00:00Z",
        }
    )


@pytest.mark.parametrize(
    ("transactions", "expected"),
    [
        ([], "cancelled"),
        ([_txn("pending")], "cancelled"),
        ([_txn("failed")], "cancelled"),
        ([_txn("succeeded")], "paid"),
        ([_txn("succeeded", "149")], "refunded"),
    ],
)
def test_wizehire_cancelled_counts_only_when_nothing_was_captured(
    transactions: list[m.Transaction], expected: str
) -> None:
    state = compute_payment_state(transactions, _order(), MAPPING, wizehire_cancelled=True)
    assert state.payment_status == expected
    assert compute_payment_state([], _order(), MAPPING).payment_status == "pending"


def _record(**values: Any) -> SyncOrder:
    base: dict[str, Any] = {
        "wizehire_order_id": "wh_1",
        "account_id": "a",
        "currency": "USD",
        "amount": Decimal("149.00"),
        "wizehire_status": "pending",
        "order_snapshot": {},
        "ghl_location_id": LOCATION_ID,
    }
    return SyncOrder(**{**base, **values})


NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"ghl_order_id": "o", "ghl_fulfillment_id": "f"}, True),
        ({"ghl_order_id": "o"}, False),  # the fulfillment is still to make
        ({"ghl_invoice_id": "i", "payment_status": "pending"}, True),  # unpaid: GHL has no order
        ({"ghl_invoice_id": "i", "payment_status": "paid"}, False),  # paid: find its order
        ({"ghl_invoice_id": "i", "wizehire_status": "paid"}, False),
        ({"wizehire_status": "cancelled", "ghl_order_id": "o"}, True),  # a checkout: left alone
        ({"wizehire_status": "cancelled", "ghl_invoice_id": "i"}, False),  # to void
        ({"wizehire_status": "cancelled", "ghl_invoice_id": "i", "invoice_voided_at": NOW}, True),
        ({"wizehire_status": "cancelled", "invoice_requested_at": NOW}, False),
        ({"ghl_location_id": None}, False),
    ],
)
def test_nothing_left_for_the_order_flow(values: dict[str, Any], expected: bool) -> None:
    assert nothing_left(_record(**values)) is expected


def test_checked_since_needs_a_read_started_no_earlier_than_the_news() -> None:
    assert checked_since(_record(ghl_checked_at=NOW), NOW)
    assert checked_since(_record(ghl_checked_at=NOW), NOW - timedelta(seconds=1))
    assert not checked_since(_record(ghl_checked_at=NOW), NOW + timedelta(microseconds=1))
    assert not checked_since(_record(), NOW)
