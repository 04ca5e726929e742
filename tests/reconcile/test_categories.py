"""Each category planted in the sandbox is found, with both sides' figures; every order of the
window has exactly one item."""

from __future__ import annotations

from decimal import Decimal

from tests.reconcile.conftest import ReconKit
from wizesync.db.reconcile_models import CATEGORIES


async def test_every_planted_disagreement_gets_its_category(recon: ReconKit) -> None:
    matched = await recon.synced()
    amount = await recon.synced()
    currency = await recon.synced()
    refund = await recon.synced()
    status = await recon.synced()
    unfulfilled = await recon.synced()
    never_sent = recon.new_order()
    recon.seed_wizehire(never_sent)
    pending_only = recon.new_order(status="pending")
    recon.seed_wizehire(pending_only)
    stray = recon.checkout()

    recon.change_wizehire(
        amount["id"], amount="150.00", items=[{**amount["items"][0], "unit_amount": "150.00"}]
    )
    recon.change_wizehire(currency["id"], currency="EUR")
    refunded_order = await recon.ghl_order_of(refund["id"])
    recon.refund_in_ghl(refunded_order["_id"], Decimal("49.00"))
    recon.change_wizehire(status["id"], sync={"payment_status": "pending"})
    unfulfilled_order = await recon.ghl_order_of(unfulfilled["id"])
    recon.drop_fulfillment(unfulfilled_order["_id"])

    run = await recon.run(heal=False)
    items = await recon.by_order(run.id)

    expected = {
        matched["id"]: "matched",
        amount["id"]: "amount_mismatch",
        currency["id"]: "currency_mismatch",
        refund["id"]: "refund_mismatch",
        status["id"]: "status_mismatch",
        unfulfilled["id"]: "fulfillment_missing",
        never_sent["id"]: "missing_in_ghl",
        pending_only["id"]: "matched",
        f"ghl:{stray['_id']}": "missing_in_wizehire",
    }
    assert {k: i.category for k, i in items.items()} == expected
    assert not any(i.healed for i in items.values())
    counts = {c: list(expected.values()).count(c) for c in CATEGORIES}
    assert run.counts == counts

    item = items[amount["id"]]
    assert item.wizehire["amount"] == "150.00" and item.ghl["amount"] == "149.00"
    assert item.ghl_location_id == recon.flow.location_id and item.ghl_order_id
    assert "sync record" in item.detail
    assert items[currency["id"]].wizehire["currency"] == "EUR"
    assert items[currency["id"]].ghl["currency"] == "USD"
    assert items[refund["id"]].ghl["amount_refunded"] == "49.00"
    assert items[refund["id"]].wizehire["amount_refunded"] == "0.00"
    assert items[status["id"]].wizehire["payment_status"] == "pending"
    assert items[status["id"]].ghl["payment_status"] == "paid"
    assert items[unfulfilled["id"]].ghl["fulfilled"] is False
    assert items[matched["id"]].ghl["fulfilled"] is True
    assert items[never_sent["id"]].ghl is None
    assert items[never_sent["id"]].wizehire["status"] == "paid"
    stray_item = items[f"ghl:{stray['_id']}"]
    assert stray_item.wizehire is None and stray_item.wizehire_order_id is None
    assert stray_item.ghl["amount"] == "298.00"


async def test_matching_through_ghl_order_id_on_the_wizehire_order(recon: ReconKit) -> None:
    """A purchase through a GHL checkout that the service never heard of: found by the
    Wizehire order's own `ghl_order_id`, and the checkout is not reported missing in
    Wizehire."""
    checkout = recon.checkout(qty=1, email="buyer@example.com")
    order = recon.new_order(ghl_order_id=checkout["_id"], ghl_location_id=recon.flow.location_id)
    recon.seed_wizehire(order)
    run = await recon.run()
    items = await recon.by_order(run.id)
    assert list(items) == [order["id"]]
    item = items[order["id"]]
    # Paid in GHL, never fulfilled, and Wizehire was never told: the first that applies.
    assert item.category == "status_mismatch", item.detail
    assert "ghl_order_id on the Wizehire order" in item.detail
    assert item.ghl_order_id == checkout["_id"]


async def test_orders_outside_the_window_get_no_item(recon: ReconKit) -> None:
    old = recon.new_order(created_at="2020-01-01T00:00:00Z")
    recon.seed_wizehire(old)
    inside = recon.new_order()
    recon.seed_wizehire(inside)
    run = await recon.run()
    assert list(await recon.by_order(run.id)) == [inside["id"]]
