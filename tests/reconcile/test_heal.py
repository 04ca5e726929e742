"""Heal: `missing_in_ghl` and `fulfillment_missing` become `matched` in the next run, through
inbox events, with no duplicate GHL records when the heal runs twice or dies halfway."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.reconcile.conftest import ReconKit
from wizesync.db.models import InboxEvent
from wizesync.reconcile.heal import HEAL_TYPE, heal_event_id, queue_heal
from wizesync.wizehire.models import ListedOrder


async def _heal_events(recon: ReconKit) -> list[InboxEvent]:
    async with recon.flow.sessionmaker() as session:
        rows = await session.execute(
            select(InboxEvent).where(InboxEvent.type == HEAL_TYPE).order_by(InboxEvent.id)
        )
        return list(rows.scalars())


def _ghl_records_of(recon: ReconKit, order_id: str) -> dict[str, Any]:
    invoices = recon.flow.invoices(order_id)
    orders = [
        o
        for o in recon.flow.orders()
        if o.get("source", {}).get("id") in {i["_id"] for i in invoices}
    ]
    return {
        "invoices": len(invoices),
        "orders": len(orders),
        "fulfillments": [len(recon.flow.fulfillments(o["_id"])) for o in orders],
    }


async def test_heal_makes_missing_and_unfulfilled_orders_match(recon: ReconKit) -> None:
    never_sent = recon.new_order()
    recon.seed_wizehire(never_sent)
    unfulfilled = await recon.synced()
    ghl_order = await recon.ghl_order_of(unfulfilled["id"])
    recon.drop_fulfillment(ghl_order["_id"])

    first = await recon.run(heal=True)
    items = await recon.by_order(first.id)
    assert items[never_sent["id"]].category == "missing_in_ghl"
    assert items[unfulfilled["id"]].category == "fulfillment_missing"
    assert items[never_sent["id"]].healed and items[unfulfilled["id"]].healed

    # The same run asking again queues nothing new; another run queues its own.
    listed = ListedOrder.model_validate(recon.wizehire_doc(never_sent["id"]))
    async with recon.flow.sessionmaker.begin() as session:
        assert (
            await queue_heal(session, first.id, f"wh:{never_sent['id']}", listed, "missing_in_ghl")
            is None
        )
    second = await recon.run(heal=True)
    events = await _heal_events(recon)
    assert sorted(e.event_id for e in events) == sorted(
        heal_event_id(run.id, f"wh:{order['id']}")
        for run in (first, second)
        for order in (never_sent, unfulfilled)
    )
    assert {e.ordering_key for e in events} == {
        f"wizehire:order:{never_sent['id']}",
        f"wizehire:order:{unfulfilled['id']}",
    }

    # Both runs' heals run (twice per order); a fulfillment answer lost on the way back once.
    recon.flow.fault(
        path="/ghl/payments/orders/*/fulfillments",
        method="POST",
        status=500,
        phase="after",
        times=1,
    )
    finished = await recon.flow.process(*(e.id for e in events))
    assert all(row.status == "done" for row in finished), [r.last_error for r in finished]

    third = await recon.run(heal=True)
    after = await recon.by_order(third.id)
    assert {k: i.category for k, i in after.items()} == {
        never_sent["id"]: "matched",
        unfulfilled["id"]: "matched",
    }
    assert not any(i.healed for i in after.values())
    assert _ghl_records_of(recon, never_sent["id"]) == {
        "invoices": 1,
        "orders": 1,
        "fulfillments": [1],
    }
    assert len(recon.flow.fulfillments(ghl_order["_id"])) == 1


@pytest.mark.parametrize("path", ["/ghl/invoices/", "/ghl/invoices/*/record-payment"])
async def test_a_heal_that_dies_halfway_creates_nothing_twice(recon: ReconKit, path: str) -> None:
    """The create went through but its answer was lost (the worker died there): the retry looks
    before it creates."""
    order = recon.new_order()
    recon.seed_wizehire(order)
    run = await recon.run(heal=True)
    [event] = await _heal_events(recon)
    recon.flow.fault(path=path, method="POST", status=500, phase="after", times=1)
    with pytest.raises(Exception):  # noqa: B017  (whatever the flow makes of a lost answer)
        await recon.flow.invoke(event.id)
    await recon.flow.invoke(event.id, attempt=2)
    await recon.flow.invoke(event.id, attempt=3)  # and once more: a redelivery
    after = await recon.run(heal=True)
    assert (await recon.by_order(after.id))[order["id"]].category == "matched"
    assert _ghl_records_of(recon, order["id"]) == {"invoices": 1, "orders": 1, "fulfillments": [1]}
    assert run.id != after.id


async def test_status_changed_on_wizehire_only_is_sent_again(recon: ReconKit) -> None:
    order = await recon.synced()
    recon.change_wizehire(order["id"], sync={"payment_status": "pending"})
    run = await recon.run(heal=True)
    assert (await recon.by_order(run.id))[order["id"]].category == "status_mismatch"
    events = await _heal_events(recon)
    await recon.flow.process(*(e.id for e in events))
    assert recon.wizehire_doc(order["id"])["ghl_sync"]["payment_status"] == "paid"
    again = await recon.run(heal=True)
    assert (await recon.by_order(again.id))[order["id"]].category == "matched"
