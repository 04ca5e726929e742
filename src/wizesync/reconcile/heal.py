"""Heal: what a run does about `missing_in_ghl`, `fulfillment_missing`, `refund_mismatch` and
`status_mismatch` (the others are only reported).

The run never calls GHL or Wizehire to fix anything itself. It queues an internal
`reconcile.heal` event per order, in the transaction that writes the order's item, on the order's
own line (`wizehire:order:<id>`, behind any of its webhooks still queued). So a heal gets what a
webhook gets: leases, retries with backoff, a dead letter with the reason, replay.

The event id is `reconcile:<run id>:<order key>`: a page written again (a resumed run) or a heal
asked twice by the same run queues one event; the next run, if the order still disagrees, queues
its own.

The handler does what Wizehire's `order.updated` webhook would: the order (as Wizehire listed it)
updates the sync record (created if the service never heard of the order), then `advance_order`
runs every step not done yet, each of which looks before it creates (the invoice by its name, the
fulfillment by the order's list), and ends with the refresh from GHL and the push to Wizehire. A
heal that runs twice, or whose worker is killed halfway, therefore creates nothing twice.

One thing a webhook cannot fix: Wizehire's copy of the sync state differing from what the service
last told it (someone changed it on Wizehire's side). The push only sends on change, so the
handler re-sends the current state itself when Wizehire's copy (as the run saw it) disagrees with
it, under an Idempotency-Key of the run and the state: once per run, however often it is retried.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from wizesync.db import sync_repo
from wizesync.db.sync_models import SyncOrder
from wizesync.flows.orders import advance_order
from wizesync.flows.outcomes import calling
from wizesync.flows.payments.wizehire_sync import order_state, state_digest
from wizesync.inbox import internal
from wizesync.inbox.context import EventContext, PermanentFailure
from wizesync.inbox.registry import registry
from wizesync.wizehire.client import idempotency_key
from wizesync.wizehire.events import Order
from wizesync.wizehire.models import ListedOrder, OrderSync

log = logging.getLogger(__name__)

HEAL_TYPE = "reconcile.heal"
HEALABLE = frozenset(
    {"missing_in_ghl", "fulfillment_missing", "refund_mismatch", "status_mismatch"}
)
_RESEND = frozenset({"refund_mismatch", "status_mismatch"})


def heal_event_id(run_id: int, order_key: str) -> str:
    return f"reconcile:{run_id}:{order_key}"


async def queue_heal(
    session: AsyncSession, run_id: int, order_key: str, order: ListedOrder, category: str
) -> int | None:
    """Queue the heal in the caller's transaction; None when this run queued it already."""
    snapshot = order.model_dump(mode="json", exclude={"sync", "updated_at"})
    sync = order.sync.model_dump(mode="json") if order.sync is not None else None
    return await internal.enqueue(
        session,
        type_=HEAL_TYPE,
        event_id=heal_event_id(run_id, order_key),
        ordering_key=f"wizehire:order:{order.id}",
        payload={
            "run_id": run_id,
            "category": category,
            "order": snapshot,
            "updated_at": order.updated_at.isoformat() if order.updated_at else None,
            "wizehire_sync": sync,
        },
    )


@registry.on("internal", HEAL_TYPE)
async def handle_heal(ctx: EventContext) -> None:
    payload = ctx.event.payload if isinstance(ctx.event.payload, dict) else {}
    try:
        order = Order.model_validate(payload["order"])
        run_id = int(payload["run_id"])
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise PermanentFailure(f"{HEAL_TYPE} with an unusable payload: {exc}") from None
    event_at = _moment(payload.get("updated_at"))
    async with ctx.unit_of_work() as session:
        record = await sync_repo.create_or_update_from_order(session, order, event_at=event_at)
        await session.refresh(record)
    if payload.get("category") == "fulfillment_missing" and record.ghl_fulfillment_id:
        record = await _forget_missing_fulfillment(ctx, record)
    synced_before = record.synced_at
    await advance_order(ctx, record.id, record=record)
    if payload.get("category") in _RESEND:
        await _resend_if_wizehire_differs(
            ctx, record.id, run_id, payload.get("wizehire_sync"), synced_before
        )


async def _forget_missing_fulfillment(ctx: EventContext, record: SyncOrder) -> SyncOrder:
    """The record says fulfilled but the run saw no fulfillment on GHL's order: look at the
    order's fulfillments now and, only if there is none, forget the stored id so the order
    flow's fulfillment step (which looks again before it creates) runs."""
    assert record.ghl_location_id and record.ghl_order_id
    with calling(f"GHL list fulfillments of order {record.ghl_order_id}"):
        existing = await ctx.services.ghl.list_fulfillments(
            record.ghl_location_id, record.ghl_order_id
        )
    if existing:
        return record
    async with ctx.unit_of_work() as session:
        await sync_repo.set_fields(session, record.id, ghl_fulfillment_id=None)
        fresh = await sync_repo.get(session, record.id)
        assert fresh is not None
        await session.refresh(fresh)
    log.info(
        "GHL's order has no fulfillment although the sync record had one: fulfilling again",
        extra={"wizehire_order_id": record.wizehire_order_id},
    )
    return fresh


async def _resend_if_wizehire_differs(
    ctx: EventContext,
    sync_order_id: int,
    run_id: int,
    seen: Any,
    synced_before: datetime | None,
) -> None:
    async with ctx.read() as session:
        record = await sync_repo.get(session, sync_order_id)
    if record is None or record.last_synced_state is None or record.synced_at is None:
        return  # never accepted by Wizehire: the advance's push is the first one
    if record.synced_at != synced_before:
        return  # the advance just pushed a changed state: Wizehire has it
    state = order_state(record)
    if state != record.last_synced_state:
        return  # not what Wizehire accepted: the push owns it
    seen = seen if isinstance(seen, dict) else {}
    if seen.get("payment_status") == state["payment_status"] and _amount(
        seen.get("amount_refunded")
    ) == _amount(state["amount_refunded"]):
        return
    body = OrderSync.model_validate({**state, "synced_at": record.synced_at.isoformat()})
    key = idempotency_key(
        record.wizehire_order_id, "sync", state_digest(state), "reconcile", run_id
    )
    log.info(
        "Wizehire's sync state differs from what it accepted: sending it again",
        extra={"wizehire_order_id": record.wizehire_order_id, "run_id": run_id},
    )
    with calling(f"Wizehire PATCH /v1/orders/{record.wizehire_order_id}/sync"):
        await ctx.services.wizehire.sync_order(record.wizehire_order_id, body, idempotency_key=key)


def _amount(value: Any) -> Decimal | None:
    """A decimal amount (absent = 0); None when Wizehire's copy holds no number at all."""
    try:
        return Decimal(str(value)) if value is not None else Decimal(0)
    except ArithmeticError:
        return None


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None
