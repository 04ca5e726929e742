"""Flow 4: the GHL subscription of a synced order mirrored into Wizehire's order sync. GHL sends
no subscription webhooks, so renewals and cancellations arrive through the poller."""

from __future__ import annotations

from datetime import datetime

from tests.flows.conftest import LOCATION_ID, FlowKit
from tests.flows.support_payments import last_sync, poller, synced_checkout


def subscription_of(flow: FlowKit, ghl_order_id: str) -> dict:
    (sub,) = [s for s in flow.sb.store.subscriptions.values() if s["entityId"] == ghl_order_id]
    return sub


async def poll(flow: FlowKit) -> None:
    result = await poller(flow).poll_location(LOCATION_ID, force=True)
    assert result is not None and result.error is None, result


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_plan_bought_in_a_checkout_shows_its_subscription_in_wizehire(
    flow: FlowKit,
) -> None:
    synced = await synced_checkout(flow, outcome="paid", plan=True)
    sub = subscription_of(flow, synced.ghl_order_id)

    await poll(flow)

    body = last_sync(flow, synced.wizehire_order_id)
    assert body["payment_status"] == "paid" and body["amount_paid"] == "99.00"
    mirrored = body["subscription"]
    assert mirrored["ghl_subscription_id"] == sub["_id"]
    assert mirrored["status"] == "active"
    assert mirrored["canceled_at"] is None
    assert moment(mirrored["next_charge_at"]) == moment(sub["schedule"]["executeAt"])
    record = await flow.sync_order(synced.wizehire_order_id)
    assert record is not None and record.subscription == mirrored


async def test_subscription_cancelled_in_ghl_reaches_wizehire(flow: FlowKit) -> None:
    synced = await synced_checkout(flow, outcome="paid", plan=True)
    await poll(flow)
    sub = subscription_of(flow, synced.ghl_order_id)
    before = len(flow.order_syncs(synced.wizehire_order_id))

    answer = await flow.control.post(f"/_sandbox/ghl/subscriptions/{sub['_id']}/cancel")
    assert answer.status_code == 200, answer.text
    await poll(flow)
    await poll(flow)  # nothing new: no further patch

    assert len(flow.order_syncs(synced.wizehire_order_id)) == before + 1
    mirrored = last_sync(flow, synced.wizehire_order_id)["subscription"]
    assert mirrored["status"] == "canceled"
    assert mirrored["next_charge_at"] is None
    assert moment(mirrored["canceled_at"]) == moment(sub["canceledAt"])
    wizehire_side = flow.wizehire_order(synced.wizehire_order_id)
    assert wizehire_side is not None
    assert wizehire_side["ghl_sync"]["subscription"]["status"] == "canceled"


async def test_renewals_move_the_next_charge_without_changing_the_orders_amount(
    flow: FlowKit,
) -> None:
    synced = await synced_checkout(flow, outcome="paid", plan=True)
    await poll(flow)
    sub = subscription_of(flow, synced.ghl_order_id)
    first_due = last_sync(flow, synced.wizehire_order_id)["subscription"]["next_charge_at"]

    answer = await flow.control.post(
        f"/_sandbox/ghl/subscriptions/{sub['_id']}/renew", json={"outcome": "succeeded"}
    )
    assert answer.status_code == 201, answer.text
    await poll(flow)

    body = last_sync(flow, synced.wizehire_order_id)
    assert moment(body["subscription"]["next_charge_at"]) > moment(first_due)
    assert body["amount_paid"] == "99.00"  # the renewal belongs to the subscription

    answer = await flow.control.post(
        f"/_sandbox/ghl/subscriptions/{sub['_id']}/renew", json={"outcome": "failed"}
    )
    assert answer.status_code == 201, answer.text
    await poll(flow)

    body = last_sync(flow, synced.wizehire_order_id)
    assert body["subscription"]["status"] == "past_due"
    assert body["payment_status"] == "paid"


async def test_one_time_order_has_no_subscription(flow: FlowKit) -> None:
    synced = await synced_checkout(flow, outcome="paid")

    await poll(flow)

    assert last_sync(flow, synced.wizehire_order_id)["subscription"] is None
    assert flow.ghl_requests("GET", "/payments/subscriptions/*") == []
