"""Internal `order.advance`: GHL said something about one of our orders -> the order's remaining
steps and its payment state, run in line with the order's own Wizehire events.

GHL's order and invoice webhooks (and the poller, for an order it found without its fulfillment)
do not touch the order themselves: they queue this event with the ordering key of the Wizehire
order (`wizehire:order:<id>`). So it never races the order flow (a paid invoice's order gets its
one fulfillment from whichever runs first; the other finds it done), and the webhooks GHL sends
while the order flow is making the order wait behind it instead of re-reading GHL beside it.

Coalescing: the event ends without a single GHL request when nothing is left for `advance_order`
to do and the record already holds the webhook's news, judged by what was stored and when:
- the record was read from GHL by reads that STARTED no earlier than the cause was received
  (`ghl_checked_at >= cause.received_at`, see `refresh.py`): they saw what the webhook announced;
- or (`news_already_stored`) the webhook reports something the stored state cannot predate:
  a payment of the record's invoice, once the state shows its whole amount captured (a paid
  invoice takes no further payment); the creation of the order whose state the order flow
  stored from GHL's answers to its own invoice payment (`own_payment_state_at`: read after GHL
  made the order); and, if it came before that state was stored, that order `completed` while
  the state says `paid` (a later status report may come with other news, e.g. a subscription
  cancelled, so it reads GHL). These are the webhooks the flow's own payment causes: the flow
  stores the state right after the payment, from the payment's answer and the transactions it
  lists next, so they often arrive after those reads started, and would each read GHL again.
A webhook's body is used only to recognise its object and that news (id, status); any other
news makes the advance read GHL. A replayed webhook carries no news: it always reads GHL.

`event_id` is `advance:<cause's event id>` (with `:replay:<n>` when the cause is a replayed
event), so a cause that runs twice queues one advance, and an operator's replay of a GHL event
still makes a fresh look.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from wizesync.db import sync_repo
from wizesync.db.base import utcnow
from wizesync.db.sync_models import SyncOrder
from wizesync.flows.orders import advance_order
from wizesync.inbox import internal
from wizesync.inbox.context import EventContext, PermanentFailure
from wizesync.inbox.registry import registry

log = logging.getLogger(__name__)

ADVANCE = "order.advance"


@dataclass(frozen=True)
class Cause:
    """What asked for the advance; `received_at` is when its news was known to us at the latest
    (a webhook's inbox arrival; for a replayed webhook or the poller, the moment it asked)."""

    source: str
    event_id: str
    type: str
    received_at: datetime
    news: dict[str, Any] | None = None  # the webhook's object: kind, id, status, payment status

    @classmethod
    def of_event(cls, ctx: EventContext) -> Cause:
        event = ctx.event
        # A replay's body is old, but the operator wants GHL read again from now on (and its
        # news is not taken as known).
        received = event.received_at if not event.replay_base else utcnow()
        news = None if event.replay_base else _news(event.type, event.payload)
        return cls(event.source, event.event_id, event.type, received, news)

    def as_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "source": self.source,
            "event_id": self.event_id,
            "type": self.type,
            "received_at": self.received_at.isoformat(),
        }
        if self.news is not None:
            payload["news"] = self.news
        return payload


def _news(event_type: str, body: Any) -> dict[str, Any] | None:
    """What a GHL order or invoice webhook says about its object, as `news_already_stored` reads
    it."""
    if not isinstance(body, dict) or not isinstance(body.get("_id"), str):
        return None
    kind = "order" if event_type.startswith("Order") else "invoice"
    return {
        "kind": kind,
        "id": body["_id"],
        "status": _word(body.get("status")),
        "payment_status": _word(body.get("paymentStatus")),
    }


def _word(value: Any) -> str | None:
    return value.strip().lower() if isinstance(value, str) else None


async def queue_advance(
    session: AsyncSession,
    record: SyncOrder,
    cause: Cause,
    *,
    event_id: str | None = None,
    replay_base: int = 0,
) -> int | None:
    """Queue `order.advance` for the record in the caller's transaction; None when this cause
    queued it already."""
    event_id = event_id or f"advance:{cause.event_id}"
    if replay_base:
        event_id = f"{event_id}:replay:{replay_base}"
    return await internal.enqueue(
        session,
        type_=ADVANCE,
        event_id=event_id,
        ordering_key=f"wizehire:order:{record.wizehire_order_id}",
        payload={"sync_order_id": record.id, "cause": cause.as_payload()},
    )


async def queue_advance_for_event(
    ctx: EventContext, session: AsyncSession, record: SyncOrder
) -> int | None:
    """`queue_advance` caused by the event the handler runs (a GHL webhook)."""
    return await queue_advance(
        session, record, Cause.of_event(ctx), replay_base=ctx.event.replay_base
    )


@registry.on("internal", ADVANCE)
async def handle_advance(ctx: EventContext) -> None:
    payload = ctx.event.payload if isinstance(ctx.event.payload, dict) else {}
    try:
        sync_order_id = int(payload["sync_order_id"])
    except (KeyError, TypeError, ValueError):
        raise PermanentFailure(f"{ADVANCE} without a sync_order_id: {payload!r}") from None
    found = payload.get("cause")
    cause: dict[str, Any] = found if isinstance(found, dict) else {}
    received_at = _moment(cause.get("received_at"))
    async with ctx.read() as session:
        record = await sync_repo.get(session, sync_order_id)
    if record is None:
        raise PermanentFailure(f"no sync record {sync_order_id}")
    known = received_at is not None and (
        checked_since(record, received_at)
        or news_already_stored(record, cause.get("type"), cause.get("news"), received_at)
    )
    if known and nothing_left(record):
        log.info(
            "GHL's news was read already and the order is complete: nothing to do",
            extra={"sync_order_id": sync_order_id, "cause": payload.get("cause")},
        )
        return
    await advance_order(ctx, sync_order_id)


def checked_since(record: SyncOrder, received_at: datetime) -> bool:
    """A refresh whose GHL reads started at or after `received_at` stored the record's state."""
    return record.ghl_checked_at is not None and record.ghl_checked_at >= received_at


_CAPTURED = frozenset({"paid", "partially_refunded", "refunded"})


def news_already_stored(
    record: SyncOrder, event_type: Any, news: Any, received_at: datetime
) -> bool:
    """The webhook reports something the stored state already holds (module doc)."""
    if record.ghl_checked_at is None or not isinstance(news, dict):
        return False
    object_id = news.get("id")
    if event_type in ("InvoicePaid", "InvoicePartiallyPaid"):
        return object_id == record.ghl_invoice_id and _whole_amount_captured(record)
    own_state_at = record.own_payment_state_at
    if own_state_at is None or object_id is None or object_id != record.ghl_order_id:
        return False
    if event_type == "OrderCreate":
        return True
    if event_type == "OrderStatusUpdate":
        return (
            received_at <= own_state_at
            and news.get("status") == "completed"
            and news.get("payment_status") in (None, "paid")
            and record.payment_status == "paid"
        )
    return False


def _whole_amount_captured(record: SyncOrder) -> bool:
    """`paid` is computed against GHL's own total (captured at least the order's or invoice's
    amount); once refunds began, against the Wizehire order's amount."""
    if record.payment_status == "paid":
        return True
    return (
        record.payment_status in _CAPTURED
        and record.amount_paid is not None
        and record.amount_paid >= record.amount
    )


def nothing_left(record: SyncOrder) -> bool:
    """No step of `advance_order` would do anything but the refresh (see orders.py's steps)."""
    if record.ghl_location_id is None:
        return False
    if record.wizehire_status == "cancelled":
        if record.ghl_invoice_id is None:
            # A checkout order (nothing of ours to void), or an invoice announced but not stored.
            return record.invoice_requested_at is None
        # Voided; or paid (GHL made its order from it), which a cancellation leaves alone.
        return record.invoice_voided_at is not None or record.ghl_order_id is not None
    if record.ghl_fulfillment_id is not None:
        return True
    if record.ghl_order_id is None and record.ghl_invoice_id is not None:
        # The refresh found no order in the invoice's transactions: the invoice is unpaid (or
        # part paid, or void) and GHL makes the order only once it is paid; its OrderCreate
        # queues the next advance. Paid without an order found yet: the order step looks again.
        return record.wizehire_status != "paid" and record.payment_status != "paid"
    return False


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else None
