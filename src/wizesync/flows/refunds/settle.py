"""Settling accepted refunds once GHL shows the money back (called by every payment refresh).

GHL sends no refund webhook: the poller (or any event's refresh) reads the order's transactions,
computes the `PaymentState`, pushes the order, then calls `settle_pending_refunds`. A refund
whose slice of its transaction's `amountRefunded` is now covered (see `rules`) becomes
`succeeded` with `processed_at`, stored first, then sent to Wizehire.
"""

from __future__ import annotations

import logging
from typing import Any

from wizesync.db import refund_repo
from wizesync.db.base import utcnow
from wizesync.flows.outcomes import calling
from wizesync.flows.payment_state import PaymentState
from wizesync.flows.refunds.rules import Claim, plan_settlement
from wizesync.flows.refunds.wizehire_push import needs_push, push_refund_state

log = logging.getLogger(__name__)


async def settle_pending_refunds(ctx: Any, sync_order_id: int, state: PaymentState) -> None:
    """Mark the order's covered refunds `succeeded` and (re)send every refund state Wizehire
    has not acknowledged yet.

    `ctx`: anything with `unit_of_work()` and `services` (an `EventContext`, or the poller's
    context). `state` must come from GHL's current transactions. A failed Wizehire call raises
    like every flow step (`RetryLater` when transient, `PermanentFailure` otherwise); the
    decisions are already stored, so the next refresh sends them again and nothing is decided
    twice.
    """
    async with ctx.unit_of_work() as session:
        wizehire_order_id = await refund_repo.wizehire_order_id_of(session, sync_order_id)
        if wizehire_order_id is None:
            return
        open_refunds = await refund_repo.list_accepted_open(
            session, wizehire_order_id, for_update=True
        )
        claims = [
            Claim(refund_id=r.id, transaction_id=r.ghl_transaction_id or "", amount=r.amount,
                  baseline=r.refunded_baseline if r.refunded_baseline is not None else r.amount)
            for r in open_refunds
        ]
        by_id = {r.id: r for r in open_refunds}
        now = utcnow()
        for step in plan_settlement(claims, state):
            refund = by_id[step.refund_id]
            if step.settled:
                await refund_repo.set_fields(
                    session, refund.id, status="succeeded", processed_at=now,
                    refunded_baseline=step.baseline,
                )
                log.info("refund settled: GHL shows the money back",
                         extra={"refund_id": refund.wizehire_refund_id,
                                "transaction_id": refund.ghl_transaction_id})
            elif step.baseline != refund.refunded_baseline:
                await refund_repo.set_fields(session, refund.id, refunded_baseline=step.baseline)
        refunds = await refund_repo.list_for_order(session, wizehire_order_id)
        to_push = [r.wizehire_refund_id for r in refunds if needs_push(r)]
    for wizehire_refund_id in to_push:
        with calling(f"Wizehire refund {wizehire_refund_id} update"):
            await push_refund_state(ctx, wizehire_refund_id)
