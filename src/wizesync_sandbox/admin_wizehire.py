"""Control plane for the fake Wizehire, `/_sandbox/wizehire/...`: the calls it received, the orders
and refunds as the service reported them, and signed Wizehire events sent to the service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from wizesync import samples
from wizesync_sandbox.clock import iso

if TYPE_CHECKING:
    from wizesync_sandbox.core import Sandbox


class EventIn(BaseModel):
    type: str
    # Either the whole `data`, or overrides merged into a sample order / refund.
    data: dict[str, Any] | None = None
    order: dict[str, Any] | None = None
    refund: dict[str, Any] | None = None
    event_id: str | None = None
    hold: bool = False


def router(sb: Sandbox) -> APIRouter:
    api = APIRouter(prefix="/_sandbox/wizehire", tags=["sandbox control plane: Wizehire"])
    state = sb.wizehire

    @api.get("/calls")
    async def calls(method: str | None = None, path: str | None = None) -> dict[str, Any]:
        """Every request the fake Wizehire API received (headers, Idempotency-Key, body, answer),
        oldest first; filter by method and path prefix (e.g. `/v1/orders/wh_ord_1/sync`)."""
        return {"data": state.find_calls(method=method, path=path)}

    @api.delete("/calls")
    async def clear_calls() -> dict[str, Any]:
        state.calls.clear()
        return {"data": []}

    @api.get("/orders")
    async def orders() -> dict[str, Any]:
        return {"data": list(state.orders.values())}

    @api.post("/orders", status_code=201)
    async def seed_order(order: dict[str, Any]) -> dict[str, Any]:
        """An order Wizehire holds (what `GET /v1/orders` returns), without sending an event."""
        if not order.get("id"):
            raise HTTPException(422, "id is required")
        return state.put_order(order)

    @api.get("/orders/{order_id}")
    async def order(order_id: str) -> dict[str, Any]:
        if order_id not in state.orders:
            raise HTTPException(404, f"no order {order_id}")
        return state.orders[order_id]

    @api.get("/refunds")
    async def refunds() -> dict[str, Any]:
        return {"data": list(state.refunds.values())}

    @api.post("/events")
    async def send_event(body: EventIn) -> dict[str, Any]:
        """Send a Wizehire event to the service, signed (Standard Webhooks) with the configured
        secret: `order.created`, `order.updated`, `refund.requested`. The order of an order event
        becomes Wizehire's record of it. `hold: true` only records it in the outbox."""
        event = _event(body)
        if event["type"] in ("order.created", "order.updated"):
            state.put_order(event["data"]["order"])
        delivery = sb.outbox.wizehire(event, event_id=body.event_id, mode="hold")
        if not body.hold:
            await sb.outbox.deliver(delivery)
        return delivery.public()

    return api


def _event(body: EventIn) -> dict[str, Any]:
    now = iso(datetime.now(UTC))
    if body.data is not None:
        return {"type": body.type, "timestamp": now, "data": body.data}
    try:
        event = samples.wizehire_event(body.type)
    except KeyError:
        raise HTTPException(422, f"unknown Wizehire event type {body.type}; send `data`") from None
    if body.order and "order" in event["data"]:
        event["data"]["order"].update(body.order)
    if body.refund and "refund" in event["data"]:
        event["data"]["refund"].update(body.refund)
    event["timestamp"] = now
    return event
