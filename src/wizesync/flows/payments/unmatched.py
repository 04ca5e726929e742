"""GHL orders no sync record knows: kept in `unmatched_ghl_orders` and reported to Slack once.

Found by the GHL order webhooks and by the poller (a transaction of an unknown order). Not an
error: a GHL checkout whose Wizehire order has not arrived yet looks the same, and the row is
marked resolved when a sync record takes the order (`refresh_order_from_ghl`).
"""

from __future__ import annotations

import logging
from typing import Any

from wizesync.db import poller_repo
from wizesync.inbox.context import FlowContext
from wizesync.notify.outbox import queue_notice
from wizesync.notify.slack import Notice

log = logging.getLogger(__name__)


async def report_unmatched(
    ctx: FlowContext,
    location_id: str,
    order_id: str,
    *,
    event_type: str | None,
    snapshot: dict[str, Any] | None,
) -> None:
    """Keep the unknown order (stored first) and tell Slack once per order: the notice is
    queued in the transaction that claims the report."""
    async with ctx.unit_of_work() as session:
        row = await poller_repo.record_unmatched(
            session, location_id, order_id, event_type=event_type, snapshot=snapshot
        )
        first_report = row.resolved_at is None and await poller_repo.claim_report(session, row.id)
        if first_report:
            await queue_notice(
                session, ctx.services, unmatched_notice(location_id, order_id, event_type, snapshot)
            )
    log.warning(
        "GHL order no Wizehire order knows",
        extra={"location_id": location_id, "ghl_order_id": order_id, "seen_by": event_type},
    )


def unmatched_notice(
    location_id: str, order_id: str, event_type: str | None, snapshot: dict[str, Any] | None
) -> Notice:
    amount = (snapshot or {}).get("amount")
    currency = (snapshot or {}).get("currency") or ""
    return Notice(
        title=f"GHL order {order_id} matches no Wizehire order",
        lines=(
            f"location {location_id}, seen by {event_type or 'the poller'}"
            + (f", amount {amount} {currency}".rstrip() if amount is not None else ""),
            "kept in unmatched_ghl_orders; it resolves itself if a Wizehire order takes it",
        ),
        # Once per GHL order, ever (claim_report already says so; the key makes it durable).
        key=f"unmatched-ghl-order:{location_id}:{order_id}",
        severity="warning",
    )
