"""Tell Wizehire where an order stands in GHL: `PATCH /v1/orders/{id}/sync`, only on change.

Exactly-once without a distributed transaction:
1. build the state from the sync record; equal to `last_synced_state` -> nothing to send;
2. otherwise store the body to send (`pending_sync_state`, with its `synced_at`) and commit;
3. PATCH it with `Idempotency-Key = (order id, "sync", sha256(the body sent))`;
4. store it as `last_synced_state`.
A crash between 2 and 4 makes the retry find the same pending body and send the same bytes under
the same key, so Wizehire applies it once and replays its answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from wizesync.db import sync_repo
from wizesync.db.base import utcnow
from wizesync.db.sync_models import SyncOrder
from wizesync.flows.outcomes import calling
from wizesync.inbox.context import FlowContext, PermanentFailure
from wizesync.notify.outbox import queue_notice
from wizesync.notify.slack import Notice
from wizesync.wizehire.client import idempotency_key
from wizesync.wizehire.models import OrderSync, OrderSyncSubscription

log = logging.getLogger(__name__)


def order_state(record: SyncOrder) -> dict[str, Any]:
    """The sync body (JSON, without `synced_at`) the record stands for now."""
    status = record.payment_status
    if status is None:
        status = "cancelled" if record.wizehire_status == "cancelled" else "pending"
    subscription = (
        OrderSyncSubscription.model_validate(record.subscription) if record.subscription else None
    )
    body = OrderSync(
        ghl_location_id=record.ghl_location_id,
        ghl_order_id=record.ghl_order_id,
        ghl_invoice_id=record.ghl_invoice_id,
        ghl_fulfillment_id=record.ghl_fulfillment_id,
        payment_status=status,  # type: ignore[arg-type]
        amount_paid=_amount(record.amount_paid),
        amount_refunded=_amount(record.amount_refunded),
        currency=record.currency,
        ghl_transaction_ids=list(record.ghl_transaction_ids or []),
        subscription=subscription,
        synced_at=utcnow(),
    )
    state = body.model_dump(mode="json")
    state.pop("synced_at")
    return state


def _amount(value: Decimal | None) -> Decimal:
    # The column keeps 4 decimals (149.0000); Wizehire gets "149.00", and "0.125" stays.
    return Decimal(0) if value is None else value.normalize()


def state_digest(state: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


async def push_order_state(ctx: FlowContext, sync_order_id: int) -> bool:
    """PATCH Wizehire when the order's state changed since it last accepted one; True if sent."""
    async with ctx.unit_of_work() as session:
        record = await sync_repo.get(session, sync_order_id, lock=True)
        if record is None:
            raise PermanentFailure(f"no sync record {sync_order_id}")
        state = order_state(record)
        previous = record.last_synced_state
        if previous == state:
            if record.pending_sync_state is not None:
                await sync_repo.set_fields(session, sync_order_id, pending_sync_state=None)
            return False
        pending = record.pending_sync_state
        if pending is None or _without_synced_at(pending) != state:
            pending = {**state, "synced_at": utcnow().isoformat()}
            await sync_repo.set_fields(session, sync_order_id, pending_sync_state=pending)
        wizehire_order_id = record.wizehire_order_id
    body = OrderSync.model_validate(pending)
    # The key names the exact body (its `synced_at` included): a retry resends the stored body
    # under the same key, and a state that comes back after another one (A, B, A again) is a
    # new body under a new key, never an old key with a different body (Wizehire: 422).
    key = idempotency_key(wizehire_order_id, "sync", state_digest(body.model_dump(mode="json")))
    with calling(f"Wizehire PATCH /v1/orders/{wizehire_order_id}/sync"):
        await ctx.services.wizehire.sync_order(wizehire_order_id, body, idempotency_key=key)
    old_status = (previous or {}).get("payment_status")
    async with ctx.unit_of_work() as session:
        await sync_repo.set_fields(
            session,
            sync_order_id,
            last_synced_state=state,
            pending_sync_state=None,
            synced_at=_moment(pending["synced_at"]),
        )
        # A first sync is not a change (Wizehire knew the order's status); a later one is. Told
        # in the transaction that records what Wizehire accepted: both, or neither.
        if old_status is not None and old_status != state["payment_status"]:
            await queue_notice(
                session, ctx.services, status_notice(wizehire_order_id, old_status, state)
            )
    return True


def _without_synced_at(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "synced_at"}


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def status_notice(order_id: str, old: str | None, state: dict[str, Any]) -> Notice:
    new = state["payment_status"]
    return Notice(
        title=f"Order {order_id}: payment status {old or 'new'} -> {new}",
        lines=(
            f"paid {state['amount_paid']} {state['currency']}, "
            f"refunded {state['amount_refunded']} {state['currency']}",
            f"GHL location {state['ghl_location_id']}, order {state['ghl_order_id'] or '-'}, "
            f"invoice {state['ghl_invoice_id'] or '-'}",
        ),
        # One occurrence = this transition to this exact state: a re-run says it once, while
        # paid -> refunded -> paid again (a new state) is told again.
        key=f"payment-status:{order_id}:{old}->{new}:{state_digest(state)[:16]}",
    )
