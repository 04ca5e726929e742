"""Telling Wizehire where a refund stands: `PATCH /v1/refunds/{id}`, once per state.

The body is built only from the stored refund (its `processed_at` is stored before the first
send), so a retry or a second process sends the very same bytes under the same
`Idempotency-Key` (refund id + status) and Wizehire performs it once. `last_synced_state` keeps
what Wizehire accepted: an unchanged refund is not sent again.
"""

from __future__ import annotations

from typing import Any

from wizesync.db import refund_repo
from wizesync.db.sync_models import SyncRefund
from wizesync.flows.payments.payment_state import money
from wizesync.inbox.context import FlowContext
from wizesync.wizehire.client import idempotency_key
from wizesync.wizehire.models import RefundUpdate


def refund_update(refund: SyncRefund) -> RefundUpdate:
    gateway, gateway_refund_id = _gateway_fields(refund)
    return RefundUpdate(
        status=refund.status,  # type: ignore[arg-type]  # stored in Wizehire's vocabulary
        amount=money(refund.amount),  # NUMERIC(14,4) gives 49.0000; Wizehire sees 49.00
        currency=refund.currency,
        ghl_transaction_id=refund.ghl_transaction_id,
        # failed: why not; manual_action_required: why a human must act (None when by choice)
        failure_reason=refund.failure_reason
        if refund.status in ("failed", "manual_action_required")
        else None,
        processed_at=refund.processed_at,
        gateway=gateway,
        gateway_refund_id=gateway_refund_id,
    )


def _gateway_fields(refund: SyncRefund) -> tuple[str | None, str | None]:
    """The processor that moved the money (or declined to): absent for manual, and while no
    gateway has answered yet."""
    if refund.gateway is None or refund.status == "manual_action_required":
        return None, None
    if refund.gateway_refund_id is not None:
        return refund.gateway, refund.gateway_refund_id
    if refund.status == "failed" and refund.gateway_attempted_at is not None:
        return refund.gateway, None  # it declined
    return None, None


def needs_push(refund: SyncRefund) -> bool:
    """Decided (anything but a not-yet-validated `pending`) and not what Wizehire last accepted."""
    if refund.status == "pending" and refund.refunded_baseline is None:
        return False
    return refund_update(refund).model_dump(mode="json") != refund.last_synced_state


async def push_refund_state(ctx: FlowContext, wizehire_refund_id: str) -> bool:
    """PATCH the refund's stored state to Wizehire when it differs from what Wizehire has;
    True when a request was sent. Wizehire errors propagate (the state stays stored, so the
    next run sends it again)."""
    async with ctx.unit_of_work() as session:
        refund = await refund_repo.get_by_wizehire_id(session, wizehire_refund_id)
    if refund is None or not needs_push(refund):
        return False
    body = refund_update(refund)
    await ctx.services.wizehire.update_refund(
        refund.wizehire_refund_id,
        body,
        idempotency_key=idempotency_key("refund", refund.wizehire_refund_id, refund.status),
    )
    sent: dict[str, Any] = body.model_dump(mode="json")
    async with ctx.unit_of_work() as session:
        current = await refund_repo.lock(session, refund.id)
        # Only if nothing moved on meanwhile; otherwise the newer state still has to go out.
        if current is not None and refund_update(current).model_dump(mode="json") == sent:
            await refund_repo.set_fields(session, refund.id, last_synced_state=sent)
    return True
