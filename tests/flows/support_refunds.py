"""Refund test helpers: a Wizehire order already synced to a paid GHL order, refund events, and
what the fake Wizehire was told about a refund."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from tests.flows.conftest import BOOST_PRICE_ID, FlowKit, now_iso
from wizesync.db import refund_repo, sync_repo
from wizesync.db.sync_models import SyncRefund
from wizesync.flows.payments.payment_state import PaymentState
from wizesync.flows.payments.refresh import refresh_order_from_ghl
from wizesync.ghl import models as m
from wizesync.wizehire.events import Order


@dataclass(frozen=True)
class PaidOrder:
    wizehire_order_id: str
    sync_id: int
    ghl_order_id: str
    transaction_id: str


async def paid_order(
    flow: FlowKit, wizehire_order_id: str, *, qty: int = 1, provider: str = "stripe"
) -> PaidOrder:
    """A customer paid in a GHL checkout (sandbox control plane, through `provider`) and the
    Wizehire order's sync record points at that GHL order, as the order flow leaves it."""
    answer = await flow.control.post(
        "/_sandbox/ghl/checkout",
        json={
            "location_id": flow.location_id,
            "items": [{"price_id": BOOST_PRICE_ID, "qty": qty}],
            "outcome": "paid",
            "provider": provider,
        },
    )
    assert answer.status_code == 201, answer.text
    ghl_order, txn = answer.json()["order"], answer.json()["transaction"]
    order = flow.order(
        wizehire_order_id,
        amount=str(ghl_order["amount"]),
        items=[
            {
                "sku": "JOB-BOOST-30",
                "name": "Job ad boost, 30 days",
                "quantity": qty,
                "unit_amount": "149.00",
            }
        ],
    )
    async with flow.sessionmaker.begin() as session:
        row = await sync_repo.create_or_update_from_order(session, Order.model_validate(order))
        await sync_repo.set_fields(
            session,
            row.id,
            ghl_location_id=flow.location_id,
            ghl_order_id=ghl_order["_id"],
            ghl_order_source="explicit",
        )
        sync_id = row.id
    return PaidOrder(wizehire_order_id, sync_id, ghl_order["_id"], txn["_id"])


def refund_body(
    order_id: str,
    amount: str,
    *,
    refund_id: str | None = None,
    currency: str = "USD",
    reason_code: str = "customer_request",
    note: str | None = "changed their mind",
) -> dict[str, Any]:
    return {
        "type": "refund.requested",
        "timestamp": now_iso(),
        "data": {
            "refund": {
                "id": refund_id or f"wh_ref_{uuid.uuid4().hex[:10]}",
                "order_id": order_id,
                "amount": amount,
                "currency": currency,
                "reason_code": reason_code,
                "note": note,
            }
        },
    }


async def request_refund(
    flow: FlowKit, body: dict[str, Any], *, event_id: str | None = None
) -> int:
    return await flow.deliver("refund.requested", body, event_id=event_id)


async def refund_in_ghl(flow: FlowKit, transaction_id: str, amount: str) -> None:
    """Someone refunds the transaction in GHL / the gateway (no webhook follows)."""
    answer = await flow.control.post(
        "/_sandbox/ghl/refunds", json={"transaction_id": transaction_id, "amount": amount}
    )
    assert answer.status_code == 200, answer.text


async def refresh(flow: FlowKit, order: PaidOrder) -> PaymentState:
    """What the poller (or any GHL event) does for a synced order."""
    return await refresh_order_from_ghl(flow.context(), order.sync_id)


async def register_provider(flow: FlowKit, title: str = "Acme Payments") -> None:
    await flow.services.ghl.register_whitelabel_provider(
        flow.location_id,
        m.RegisterWhitelabelProvider(
            unique_name="acme-payments",
            title=title,
            provider="nmi",
            description="white-label NMI",
            image_url="https://example.com/acme.png",
        ),
    )


def refund_calls(flow: FlowKit, refund_id: str) -> list[dict[str, Any]]:
    """The PATCH /v1/refunds/{id} calls the fake Wizehire received, oldest first."""
    return flow.wizehire_calls(method="PATCH", path=f"/v1/refunds/{refund_id}")


def wizehire_refund(flow: FlowKit, refund_id: str) -> dict[str, Any] | None:
    return flow.sb.wizehire.refunds.get(refund_id)


async def stored_refund(flow: FlowKit, refund_id: str) -> SyncRefund | None:
    async with flow.sessionmaker() as session:
        return await refund_repo.get_by_wizehire_id(session, refund_id)


def refund_body_id(body: dict[str, Any]) -> str:
    return str(body["data"]["refund"]["id"])
