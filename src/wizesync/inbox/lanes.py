"""Lanes: the tenant an event belongs to, so one tenant's burst cannot hold up another's order.

GHL's request budget is per location, and so is the queue's fairness: the worker claims from the
lane it served longest ago first (`db/inbox_repo.claim_due`), so a location with 10,000 waiting
events gets its turn like a location with one. The lane is read from the event's own payload
when it is stored:

- GHL webhooks: `locationId`, else `altId` (an invoice's location), else `companyId` (an agency
  install);
- Wizehire orders: the order's `ghl_location_id`, else its `account_id` (the mapping routes an
  account to its location, and one account's orders share it either way);
- anything else (a refund carries only its order id, internal events, Slack notices): the
  shared lane `""`.

A lane decides fairness only: ordering within an ordering key comes from its line, whatever lane
the events are in.
"""

from __future__ import annotations

from typing import Any

SHARED = ""
_MAX = 255


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def lane_for(source: str, payload: Any) -> str:
    """The lane of an event from `source` with this (parsed JSON) payload."""
    if not isinstance(payload, dict):
        return SHARED
    if source == "ghl":
        for field in ("locationId", "altId", "companyId"):
            value = _text(payload.get(field))
            if value:
                return f"location:{value}"[:_MAX]
        return SHARED
    if source == "wizehire":
        data = payload.get("data")
        order = data.get("order") if isinstance(data, dict) else None
        if isinstance(order, dict):
            location = _text(order.get("ghl_location_id"))
            if location:
                return f"location:{location}"[:_MAX]
            account = _text(order.get("account_id"))
            if account:
                return f"account:{account}"[:_MAX]
    return SHARED
