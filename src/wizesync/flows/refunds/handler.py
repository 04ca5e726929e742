"""Wizehire `refund.requested`: store it, validate it against GHL's current data, hand it to the
configured executor, and tell Wizehire where it stands.

Steps, each stored before the next outbound call, so a redelivery or a crash resumes:
1. the refund row (intent first; a redelivery finds it, the first request's amount stays);
2. validation: the Wizehire order is synced to a GHL order, the currency matches, and the amount
   fits what is still refundable (captured minus refunded minus refunds accepted but not carried
   out yet) on one captured transaction. Refused -> `failed` + the reason in words;
   accepted -> the transaction and its `refunded_baseline` stored;
3. the executor (`refunds.executor` in the mapping; `auto`, the default, refunds at the gateway
   holding the money, recording its intent before the call; `manual` asks a human through
   Slack: the notice is queued in the transaction that stores the executor's status);
4. `PATCH /v1/refunds/{id}` with the stored state (see `wizehire_push`).
An order whose sync has not reached a GHL order yet makes the refund wait (RetryLater, the
worker's backoff); on the event's last attempt it is refused with a reason saying so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from wizesync.db import refund_repo, sync_repo
from wizesync.db.base import utcnow
from wizesync.db.sync_models import SyncOrder, SyncRefund
from wizesync.flows.outcomes import calling
from wizesync.flows.payments.payment_state import PaymentState, money
from wizesync.flows.payments.refresh import refresh_order_from_ghl
from wizesync.flows.refunds.executors import RefundCase, get_executor, load_executors
from wizesync.flows.refunds.rules import Accepted, Claim, Refused, decide
from wizesync.flows.refunds.wizehire_push import push_refund_state
from wizesync.inbox.context import EventContext, PermanentFailure, RetryLater
from wizesync.inbox.registry import registry
from wizesync.notify.outbox import queue_notice
from wizesync.wizehire.events import Refund, RefundRequestedEvent

log = logging.getLogger(__name__)
load_executors()  # auto + the gateway plug-ins


@dataclass(frozen=True)
class GhlOrder:
    """Where the refund's Wizehire order lives in GHL (the sync record got that far)."""

    location_id: str
    order_id: str


@registry.on("wizehire", "refund.requested")
async def handle_refund_requested(ctx: EventContext) -> None:
    requested = _parse(ctx.event.payload)
    async with ctx.unit_of_work() as session:
        refund = await refund_repo.create_once(
            session,
            refund_repo.NewRefund(
                wizehire_refund_id=requested.id,
                wizehire_order_id=requested.order_id,
                amount=requested.amount,
                currency=requested.currency,
                reason_code=requested.reason_code,
                note=requested.note,
                executor=ctx.services.mapping.refunds.executor,
            ),
        )
    if refund.status in refund_repo.OPEN_STATUSES:
        current = await _current_state(ctx, refund)
        if current is not None:  # None: refused already (stored as failed)
            state, ghl_order = current
            if refund.refunded_baseline is None:
                await _validate(ctx, refund, ghl_order, state)
            refund = await _reload(ctx, refund)
            if refund.status in refund_repo.OPEN_STATUSES and refund.ghl_transaction_id:
                await _execute(ctx, refund, state, ghl_order)
    with calling(f"Wizehire refund {requested.id} update"):
        await push_refund_state(ctx, requested.id)


def _parse(payload: Any) -> Refund:
    try:
        return RefundRequestedEvent.model_validate(payload).data.refund
    except ValidationError as exc:
        raise PermanentFailure(
            f"refund.requested payload does not match the contract: {exc}"
        ) from None


async def _current_state(
    ctx: EventContext, refund: SyncRefund
) -> tuple[PaymentState, GhlOrder] | None:
    """GHL's current payment state of the refund's order, read fresh through the payment
    refresh (which also settles refunds GHL already shows); None when the refund was refused
    here. A GHL order with unusable data (mixed currencies, ...) makes the event dead
    (PermanentFailure from the refresh): replayable once fixed, rather than a refused refund."""
    sync_order = await _sync_order(ctx, refund.wizehire_order_id)
    if (
        sync_order is not None
        and not sync_order.ghl_order_id
        and sync_order.ghl_invoice_id
        and sync_order.ghl_location_id
    ):
        # Only the invoice is known: the refresh looks for the order GHL made for it.
        await refresh_order_from_ghl(ctx, sync_order.id)
        sync_order = await _sync_order(ctx, refund.wizehire_order_id)
    if sync_order is None or not sync_order.ghl_order_id or not sync_order.ghl_location_id:
        await _wait_for_order(ctx, refund, sync_order)
        return None
    state = await refresh_order_from_ghl(ctx, sync_order.id)
    return state, GhlOrder(sync_order.ghl_location_id, sync_order.ghl_order_id)


async def _sync_order(ctx: EventContext, wizehire_order_id: str) -> SyncOrder | None:
    async with ctx.unit_of_work() as session:
        return await sync_repo.get_by_wizehire_id(session, wizehire_order_id)


async def _wait_for_order(
    ctx: EventContext, refund: SyncRefund, sync_order: SyncOrder | None
) -> None:
    if sync_order is None:
        reason = (
            f"Wizehire order {refund.wizehire_order_id} is unknown here: no "
            f"order.created for it has been synced"
        )
    else:
        reason = (
            f"Wizehire order {refund.wizehire_order_id} has no GHL order yet (its sync "
            f"has not finished"
            + (f": {sync_order.last_error}" if sync_order.last_error else "")
            + ")"
        )
    if refund.refunded_baseline is not None:
        raise PermanentFailure(f"refund {refund.wizehire_refund_id} was accepted but {reason}")
    if ctx.event.attempt < ctx.settings.worker_max_attempts:
        raise RetryLater(f"refund {refund.wizehire_refund_id} waits: {reason}")
    await _refuse(
        ctx,
        refund,
        f"{reason}; gave up after {ctx.event.attempt} attempts",
        sync_order.ghl_location_id if sync_order is not None else None,
    )


async def _validate(
    ctx: EventContext, refund: SyncRefund, ghl_order: GhlOrder, state: PaymentState
) -> None:
    async with ctx.unit_of_work() as session:
        others = await refund_repo.list_accepted_open(session, refund.wizehire_order_id)
    claims = [
        Claim(
            refund_id=r.id,
            transaction_id=r.ghl_transaction_id or "",
            amount=r.amount,
            baseline=r.refunded_baseline if r.refunded_baseline is not None else r.amount,
        )
        for r in others
        if r.id != refund.id
    ]
    verdict = decide(
        amount=refund.amount,
        currency=refund.currency,
        ghl_order_id=ghl_order.order_id,
        state=state,
        open_claims=claims,
        mapping=ctx.services.mapping,
    )
    if isinstance(verdict, Refused):
        await _refuse(ctx, refund, verdict.reason, ghl_order.location_id)
        return
    assert isinstance(verdict, Accepted)
    async with ctx.unit_of_work() as session:
        current = await refund_repo.lock(session, refund.id)
        if (
            current is not None
            and current.status == "pending"
            and current.refunded_baseline is None
        ):
            await refund_repo.set_fields(
                session,
                refund.id,
                ghl_location_id=ghl_order.location_id,
                ghl_transaction_id=verdict.transaction_id,
                refunded_baseline=verdict.baseline,
            )
    log.info(
        "refund accepted",
        extra={"refund_id": refund.wizehire_refund_id, "transaction_id": verdict.transaction_id},
    )


async def _refuse(
    ctx: EventContext, refund: SyncRefund, reason: str, location_id: str | None
) -> None:
    async with ctx.unit_of_work() as session:
        current = await refund_repo.lock(session, refund.id)
        if (
            current is not None
            and current.status == "pending"
            and current.refunded_baseline is None
        ):
            await refund_repo.set_fields(
                session,
                refund.id,
                status="failed",
                failure_reason=reason,
                ghl_location_id=location_id,
            )
    log.info("refund refused", extra={"refund_id": refund.wizehire_refund_id, "reason": reason})


async def _execute(
    ctx: EventContext, refund: SyncRefund, state: PaymentState, ghl_order: GhlOrder
) -> None:
    try:
        executor = get_executor(refund.executor)
    except KeyError as exc:
        raise PermanentFailure(str(exc.args[0])) from None
    case = RefundCase(
        refund_id=refund.id,
        wizehire_refund_id=refund.wizehire_refund_id,
        wizehire_order_id=refund.wizehire_order_id,
        amount=money(refund.amount),
        currency=refund.currency,
        reason_code=refund.reason_code,
        note=refund.note,
        ghl_location_id=refund.ghl_location_id or ghl_order.location_id,
        ghl_order_id=ghl_order.order_id,
        ghl_transaction_id=refund.ghl_transaction_id or "",
        notified_at=refund.notified_at,
        status=refund.status,
        gateway=refund.gateway,
        gateway_refund_id=refund.gateway_refund_id,
        gateway_attempted_at=refund.gateway_attempted_at,
    )
    result = await executor.execute(ctx, case, state)
    values: dict[str, Any] = {"status": result.status}
    if result.status == "succeeded":
        values["processed_at"] = utcnow()
    elif result.status == "failed":
        values["failure_reason"] = (
            result.failure_reason or f"the {executor.name} refund executor refused the refund"
        )
    elif result.failure_reason:  # manual_action_required: why a human must act
        values["failure_reason"] = result.failure_reason
    if result.gateway is not None:
        values["gateway"] = result.gateway
    if result.gateway_refund_id is not None:
        values["gateway_refund_id"] = result.gateway_refund_id
    if result.gateway_action is not None:
        values["gateway_action"] = result.gateway_action
    async with ctx.unit_of_work() as session:
        current = await refund_repo.lock(session, refund.id)
        # The poller may have settled it meanwhile: a decided refund is never walked back,
        # and nobody needs telling about it.
        if current is None or current.status != refund.status:
            return
        changed = {k: v for k, v in values.items() if getattr(current, k) != v}
        if changed:
            await refund_repo.set_fields(session, refund.id, **changed)
        # Queued with the status it is about: both are stored, or neither.
        if (
            result.notice is not None
            and current.notified_at is None
            and await queue_notice(session, ctx.services, result.notice)
        ):
            await refund_repo.set_fields(session, refund.id, notified_at=utcnow())


async def _reload(ctx: EventContext, refund: SyncRefund) -> SyncRefund:
    async with ctx.unit_of_work() as session:
        current = await refund_repo.get_by_wizehire_id(session, refund.wizehire_refund_id)
    assert current is not None
    return current
