"""Payment / poller / subscription test helpers: orders synced end to end through the order flow,
payments made in the fake GHL, the GHL webhooks it recorded, and a Poller on the kit's services."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tests.flows.conftest import LOCATION_ID, PLAN_SKU, SAMPLE_SKU, FlowKit, now_iso
from wizesync.db.models import EventStatus
from wizesync.flows.payments.poller import Poller
from wizesync.ghl import models as m
from wizesync_sandbox.defaults import BOOST_PRICE_ID, PLAN_PRICE_ID


@dataclass(frozen=True)
class Synced:
    wizehire_order_id: str
    ghl_order_id: str
    sync_id: int


async def checkout(
    flow: FlowKit, *, outcome: str = "pending", price_id: str = BOOST_PRICE_ID
) -> dict[str, Any]:
    """A customer buys through a GHL checkout (sandbox control plane); the whole answer."""
    answer = await flow.control.post(
        "/_sandbox/ghl/checkout",
        json={
            "location_id": LOCATION_ID,
            "items": [{"price_id": price_id, "qty": 1}],
            "contact": {"email": f"buyer-{uuid.uuid4().hex[:6]}@example.com", "firstName": "Pat"},
            "outcome": outcome,
        },
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


async def synced_checkout(flow: FlowKit, *, outcome: str = "pending", plan: bool = False) -> Synced:
    """A GHL checkout order, and the Wizehire order naming it (`ghl_order_id`) run through the
    real order flow: the sync record points at the GHL order and Wizehire got its first sync."""
    bought = await checkout(
        flow, outcome=outcome, price_id=PLAN_PRICE_ID if plan else BOOST_PRICE_ID
    )
    ghl_order = bought["order"]
    overrides: dict[str, Any] = {
        "ghl_order_id": ghl_order["_id"],
        "status": "paid" if outcome == "paid" else "pending",
    }
    if plan:
        overrides.update(
            amount="99.00",
            items=[{"sku": PLAN_SKU, "name": "Hiring plan", "quantity": 1, "unit_amount": "99.00"}],
        )
    else:
        overrides.update(
            items=[
                {
                    "sku": SAMPLE_SKU,
                    "name": "Job ad boost, 30 days",
                    "quantity": 1,
                    "unit_amount": "149.00",
                }
            ]
        )
    order = flow.order(**overrides)
    (event,) = await flow.process(await flow.deliver_order("order.created", order))
    assert event.status == EventStatus.DONE, event.last_error
    record = await flow.sync_order(order["id"])
    assert record is not None and record.ghl_order_id == ghl_order["_id"]
    return Synced(order["id"], ghl_order["_id"], record.id)


async def pay_in_ghl(flow: FlowKit, ghl_order_id: str) -> None:
    """The customer pays the open GHL order (an offline payment recorded in GHL)."""
    ok = await flow.services.ghl.record_order_payment(
        LOCATION_ID, ghl_order_id, m.RecordOrderPayment(mode="cash", notes="paid at the desk")
    )
    assert ok


async def refund_in_ghl(flow: FlowKit, ghl_order_id: str, amount: str | None = None) -> None:
    """Someone refunds (part of) the order's payment in GHL; GHL sends no webhook for it."""
    body: dict[str, Any] = {"order_id": ghl_order_id}
    if amount is not None:
        body["amount"] = amount
    answer = await flow.control.post("/_sandbox/ghl/refunds", json=body)
    assert answer.status_code == 200, answer.text


def outbox_mark(flow: FlowKit) -> int:
    return len(flow.sb.outbox.deliveries)


def ghl_webhooks(
    flow: FlowKit, since: int = 0, *, types: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Bodies of the GHL webhooks the fake GHL recorded after `since` (not delivered: webhooks
    are off in flow tests, the test decides what arrives, when, and how often)."""
    found = [
        d.payload
        for d in list(flow.sb.outbox.deliveries.values())[since:]
        if d.source == "ghl" and d.type not in ("InvoiceCreate",)
    ]
    return [p for p in found if not types or p["type"] in types]


async def deliver_ghl(flow: FlowKit, payload: dict[str, Any]) -> int:
    """One delivery of a GHL webhook (its own webhookId: a redelivery GHL made as a new event)."""
    body = {**payload, "timestamp": now_iso(), "webhookId": uuid.uuid4().hex}
    return await flow.deliver(payload["type"], body, source="ghl", event_id=body["webhookId"])


def sync_bodies(flow: FlowKit, wizehire_order_id: str) -> list[dict[str, Any]]:
    return [c["body"] for c in flow.order_syncs(wizehire_order_id)]


def applied_syncs(flow: FlowKit, wizehire_order_id: str) -> list[dict[str, Any]]:
    """Sync bodies Wizehire applied: not the replays of an Idempotency-Key it already had."""
    return [c["body"] for c in flow.order_syncs(wizehire_order_id) if not c.get("replayed")]


def last_sync(flow: FlowKit, wizehire_order_id: str) -> dict[str, Any]:
    bodies = sync_bodies(flow, wizehire_order_id)
    assert bodies, f"Wizehire never heard of {wizehire_order_id}"
    return bodies[-1]


def poller(flow: FlowKit, **kwargs: Any) -> Poller:
    kwargs.setdefault("overlap", timedelta(minutes=10))
    return Poller(
        settings=flow.settings, sessionmaker=flow.sessionmaker, services=flow.services, **kwargs
    )


async def advance_ghl_clock(flow: FlowKit, seconds: float) -> None:
    answer = await flow.control.post("/_sandbox/clock", json={"advance_seconds": seconds})
    assert answer.status_code == 200, answer.text
