"""Helpers for GHL webhooks that lead to `order.advance`: run a worker until the webhooks AND the
internal events they queued are finished, and read those internal events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tests.flows.conftest import FlowKit
from tests.flows.support_payments import deliver_ghl
from tests.support.waiting import eventually
from wizesync.db.models import EventAttempt, EventStatus, InboxEvent
from wizesync.flows.payments.advance import ADVANCE

_FINAL = (EventStatus.DONE.value, EventStatus.DEAD.value)


async def advance_events(flow: FlowKit) -> list[InboxEvent]:
    """Every `order.advance` in the inbox, oldest first."""
    async with flow.sessionmaker() as session:
        rows = await session.execute(
            select(InboxEvent)
            .where(InboxEvent.source == "internal", InboxEvent.type == ADVANCE)
            .order_by(InboxEvent.id)
        )
        return list(rows.scalars().all())


async def attempts_of(flow: FlowKit, inbox_id: int) -> list[EventAttempt]:
    async with flow.sessionmaker() as session:
        rows = await session.execute(
            select(EventAttempt)
            .where(EventAttempt.event_id == inbox_id)
            .order_by(EventAttempt.attempt)
        )
        return list(rows.scalars().all())


async def wait_advances_finished(flow: FlowKit, timeout: float = 60.0) -> list[InboxEvent]:
    async def check() -> list[InboxEvent] | None:
        rows = await advance_events(flow)
        return rows if all(r.status in _FINAL for r in rows) else None

    return await eventually(check, what="order.advance events to finish", timeout=timeout)


async def process_with_advances(
    flow: FlowKit, *inbox_ids: int, timeout: float = 60.0
) -> list[InboxEvent]:
    """A real Worker until these events are finished and so is every `order.advance` (which
    they queue in their own transaction, so it exists once they are done) and the Slack notices
    queued meanwhile; these events."""
    async with flow.running_worker():
        events = await flow.wait_finished(*inbox_ids, timeout=timeout)
        await wait_advances_finished(flow, timeout=timeout)
        notices_sent = getattr(flow, "wait_notices_sent", None)  # Slack through the outbox
        if notices_sent is not None:
            await notices_sent(timeout=timeout)
    return events


async def run_ghl(flow: FlowKit, webhook: dict[str, Any]) -> InboxEvent:
    """Deliver one GHL webhook and run it with the advance it leads to (one after the other,
    as a worker with nothing else queued would)."""
    (event,) = await process_with_advances(flow, await deliver_ghl(flow, webhook))
    return event
