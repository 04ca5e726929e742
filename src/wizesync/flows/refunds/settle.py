"""Settling accepted refunds once GHL shows the money back (called by every payment refresh).

GHL sends no refund webhook: the poller (or any event's refresh) reads the order's transactions,
computes the `PaymentState`, pushes the order, then calls `settle_pending_refunds`. A refund
whose slice of its transaction's `amountRefunded` is now covered (see `rules`) becomes
`succeeded` with `processed_at`, stored first, then sent to Wizehire. A gateway refund the
gateway already confirmed gets `ghl_seen_at` instead; one GHL has not shown
`REFUND_GHL_CATCHUP_SECONDS` after the gateway call gets one Slack notice (queued with the mark
that it was sent).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from wizesync.db import refund_repo
from wizesync.db.base import utcnow
from wizesync.db.sync_models import SyncRefund
from wizesync.flows.outcomes import calling
from wizesync.flows.payments.payment_state import PaymentState
from wizesync.flows.refunds.rules import Claim, plan_settlement
from wizesync.flows.refunds.wizehire_push import needs_push, push_refund_state
from wizesync.inbox.context import FlowContext
from wizesync.notify.outbox import queue_notice
from wizesync.notify.slack import Notice
from wizesync.wizehire.models import decimal_text

log = logging.getLogger(__name__)


async def settle_pending_refunds(ctx: FlowContext, sync_order_id: int, state: PaymentState) -> None:
    """Mark the order's covered refunds `succeeded` and (re)send every refund state Wizehire
    has not acknowledged yet.

    `ctx`: a handler's `EventContext`, or the poller's `FlowContext`. `state` must come from
    GHL's current transactions. A failed Wizehire call raises like every flow step
    (`RetryLater` when transient, `PermanentFailure` otherwise); the decisions are already
    stored, so the next refresh sends them again and nothing is decided twice.
    """
    async with ctx.unit_of_work() as session:
        wizehire_order_id = await refund_repo.wizehire_order_id_of(session, sync_order_id)
        if wizehire_order_id is None:
            return
        open_refunds = await refund_repo.list_accepted_open(
            session, wizehire_order_id, for_update=True
        )
        claims = [
            Claim(
                refund_id=r.id,
                transaction_id=r.ghl_transaction_id or "",
                amount=r.amount,
                baseline=r.refunded_baseline if r.refunded_baseline is not None else r.amount,
            )
            for r in open_refunds
        ]
        by_id = {r.id: r for r in open_refunds}
        now = utcnow()
        late_after = timedelta(seconds=ctx.services.settings.refund_ghl_catchup_seconds)
        for step in plan_settlement(claims, state):
            refund = by_id[step.refund_id]
            if step.settled and refund_repo.awaiting_ghl(refund):
                await refund_repo.set_fields(
                    session, refund.id, ghl_seen_at=now, refunded_baseline=step.baseline
                )
                log.info(
                    "GHL shows the gateway refund",
                    extra={"refund_id": refund.wizehire_refund_id, "gateway": refund.gateway},
                )
            elif step.settled and _unanswered_gateway_call(refund):
                # GHL shows money back, but which gateway refund it is only the gateway can
                # say: the refund's own event looks it up there (and stores its id).
                if step.baseline != refund.refunded_baseline:
                    await refund_repo.set_fields(
                        session, refund.id, refunded_baseline=step.baseline
                    )
            elif step.settled:
                await refund_repo.set_fields(
                    session,
                    refund.id,
                    status="succeeded",
                    processed_at=now,
                    refunded_baseline=step.baseline,
                    **({"ghl_seen_at": now} if refund.gateway_refund_id else {}),
                )
                log.info(
                    "refund settled: GHL shows the money back",
                    extra={
                        "refund_id": refund.wizehire_refund_id,
                        "transaction_id": refund.ghl_transaction_id,
                    },
                )
            else:
                if step.baseline != refund.refunded_baseline:
                    await refund_repo.set_fields(
                        session, refund.id, refunded_baseline=step.baseline
                    )
                if _late_at_ghl(refund, now - late_after) and await queue_notice(
                    session, ctx.services, ghl_late_notice(refund, state)
                ):
                    await refund_repo.set_fields(session, refund.id, ghl_catchup_notified_at=now)
        refunds = await refund_repo.list_for_order(session, wizehire_order_id)
        to_push = [r.wizehire_refund_id for r in refunds if needs_push(r)]
    for wizehire_refund_id in to_push:
        with calling(f"Wizehire refund {wizehire_refund_id} update"):
            await push_refund_state(ctx, wizehire_refund_id)


def _unanswered_gateway_call(refund: SyncRefund) -> bool:
    return (
        refund.gateway_attempted_at is not None
        and refund.gateway_refund_id is None
        and refund.status == "pending"
    )


def _late_at_ghl(refund: SyncRefund, sent_before: object) -> bool:
    return (
        refund.gateway_refund_id is not None
        and refund.ghl_seen_at is None
        and refund.ghl_catchup_notified_at is None
        and refund.gateway_attempted_at is not None
        and refund.gateway_attempted_at <= sent_before
    )  # type: ignore[operator]


def ghl_late_notice(refund: SyncRefund, state: PaymentState) -> Notice:
    txn = state.by_transaction.get(refund.ghl_transaction_id or "")
    shown = decimal_text(txn.amount_refunded) if txn is not None else "unknown"
    amount = f"{decimal_text(refund.amount)} {refund.currency}"
    return Notice(
        title=f"GHL does not show a gateway refund yet: {amount} on Wizehire order "
        f"{refund.wizehire_order_id}",
        lines=(
            f"Refund: {refund.wizehire_refund_id}, made at {refund.gateway} as "
            f"{refund.gateway_refund_id}",
            f"GHL transaction {refund.ghl_transaction_id} (location {refund.ghl_location_id}) "
            f"shows {shown} refunded",
            "Check the payment integration of the location in GHL; reconciliation reports it as "
            "refund_mismatch until GHL shows it.",
        ),
        key=f"refund-ghl-late:{refund.wizehire_refund_id}",
        severity="warning",
    )
