"""Flow 4: the GHL subscription of a synced order, mirrored into the `subscription` part of
Wizehire's order sync (`ghl_subscription_id`, `status`, `next_charge_at`, `canceled_at`).

GHL sends no subscription webhooks: renewals, failures (`past_due`) and cancellations show only
when GHL is read, which the poller does every interval (and every order refresh does too). The
link order -> subscription: the order's first transaction carries `subscriptionId`, and the
subscription's `entityId` is the order (read `GET /payments/subscriptions?entityId=<order>` when
the order has recurring items but no transaction names one yet). Once known, the id is kept on the
sync record and the subscription is re-read by id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from wizesync.flows.outcomes import calling
from wizesync.ghl import models as m
from wizesync.inbox.context import FlowContext

_TERMINAL = frozenset({"canceled", "cancelled", "incomplete_expired", "expired"})


async def current_subscription(
    ctx: FlowContext,
    location_id: str,
    order: m.Order | None,
    transactions: list[m.Transaction],
    known_id: str | None,
) -> dict[str, Any] | None:
    """The order's subscription as Wizehire's `subscription` object, or None (none so far)."""
    if order is None:
        return None
    ghl = ctx.services.ghl
    sub_id = known_id or next((t.subscription_id for t in transactions if t.subscription_id), None)
    if sub_id is None:
        if not any(_recurring(item) for item in order.items):
            return None
        with calling(f"GHL list subscriptions of order {order.id}"):
            page = await ghl.list_subscriptions(location_id, entity_id=order.id)
        subs = [s for s in page.items if s.entity_id in (None, order.id)]
        if not subs:
            return None
        sub_id = max(subs, key=lambda s: (_aware(s.created_at), s.id)).id
    with calling(f"GHL get subscription {sub_id}"):
        sub = await ghl.get_subscription(location_id, sub_id)
    return subscription_part(sub)


def subscription_part(sub: m.Subscription) -> dict[str, Any]:
    """Wizehire's `subscription` object (JSON-ready) from GHL's subscription. A subscription
    that ended has no next charge."""
    status = (sub.status or "unknown").lower()
    next_charge = None if status in _TERMINAL else _next_charge(sub)
    return {
        "ghl_subscription_id": sub.id,
        "status": status,
        "next_charge_at": _iso(next_charge),
        "canceled_at": _iso(sub.canceled_at),
    }


def _next_charge(sub: m.Subscription) -> datetime | None:
    """Where GHL keeps the next charge is unconfirmed: `schedule.executeAt`, else the period end
    of the provider's snapshot (epoch seconds)."""
    schedule = sub.schedule or {}
    value = schedule.get("executeAt") or schedule.get("nextExecutionAt")
    if isinstance(value, str):
        try:
            return _aware(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            pass
    snapshot = (sub.model_extra or {}).get("subscriptionSnapshot") or {}
    end = snapshot.get("current_period_end") if isinstance(snapshot, dict) else None
    if isinstance(end, int | float):
        return datetime.fromtimestamp(end, UTC)
    return None


def _recurring(item: m.OrderItem) -> bool:
    return bool(item.price is not None and (item.price.type or "").lower() == "recurring")


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return _aware(moment).astimezone(UTC).isoformat().replace("+00:00", "Z")
