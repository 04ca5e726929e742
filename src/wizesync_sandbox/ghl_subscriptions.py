"""Subscriptions of the fake GHL. GHL sends no subscription webhooks: renewals, failures and
cancellations are visible only by polling `GET /payments/subscriptions` and the transactions.

Where GHL keeps "next charge" is unconfirmed; the sandbox puts it in `schedule.executeAt` and in a
Stripe-like `subscriptionSnapshot` (`current_period_start`/`current_period_end`, epoch seconds).
A renewal's transaction has `entityType: "subscription"`, `entityId` and `subscriptionId` = the
subscription's `_id`, so it does not inflate the first order's paid amount.
"""

from __future__ import annotations

import calendar
import secrets
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from wizesync_sandbox.clock import iso
from wizesync_sandbox.ghl_ledger import Ledger, LedgerError, as_amount
from wizesync_sandbox.ghl_state import Doc, clean, hex_id, money

_RRULE = {"day": "daily", "week": "weekly", "month": "monthly", "year": "yearly"}
_DETAIL_ONLY = (
    "contactSnapshot",
    "entitySource",
    "paymentProvider",
    "schedule",
    "recurringProduct",
)
_LIST_ONLY = (
    "contactName",
    "contactEmail",
    "entitySourceType",
    "entitySourceName",
    "entitySourceId",
    "paymentProviderType",
)


def add_interval(moment: datetime, interval: str, count: int = 1) -> datetime:
    if interval == "day":
        return moment + timedelta(days=count)
    if interval == "week":
        return moment + timedelta(weeks=count)
    months = count * (12 if interval == "year" else 1)
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


class Subscriptions:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.store = ledger.store

    def start(self, order: Doc, contact: Doc, items: list[Doc], *, provider: str) -> Doc:
        price = items[0]["price"]
        interval = price.get("recurring", {}).get("interval", "month")
        count = int(price.get("recurring", {}).get("intervalCount", 1))
        amount = sum(
            (as_amount(i["price"]["amount"], "amount") * i["qty"] for i in items), Decimal(0)
        )
        start = self.ledger.store.clock.now()
        end = add_interval(start, interval, count)
        source = order["source"]
        now = iso(start)
        sub = clean(
            {
                "_id": hex_id(),
                "altId": order["altId"],
                "altType": "location",
                "contactId": contact["id"],
                "contactName": contact.get("name"),
                "contactEmail": contact.get("email"),
                "contactSnapshot": order["contactSnapshot"],
                "currency": order["currency"],
                "amount": money(amount),
                "status": "active",
                "liveMode": order["liveMode"],
                "entityType": "order",
                "entityId": order["_id"],
                "entitySourceType": source["type"],
                "entitySourceName": source.get("name"),
                "entitySourceId": source.get("id"),
                "entitySource": clean(
                    {
                        "type": source["type"],
                        "id": source.get("id") or order["_id"],
                        "name": source.get("name"),
                    }
                ),
                "subscriptionId": f"sub_{secrets.token_hex(12)}",
                "paymentProviderType": provider,
                "paymentProvider": {"type": provider},
                "recurringProduct": {
                    "product": items[0]["product"],
                    "price": price,
                    "qty": items[0]["qty"],
                },
                "schedule": {
                    "executeAt": iso(end),
                    "rrule": {
                        "intervalType": _RRULE.get(interval, "monthly"),
                        "interval": count,
                        "startDate": start.date().isoformat(),
                    },
                },
                "subscriptionSnapshot": _period("active", start, end),
                "createdAt": now,
                "updatedAt": now,
            }
        )
        self.store.subscriptions[sub["_id"]] = sub
        return sub

    def renew(self, sub: Doc, *, outcome: str = "succeeded") -> dict[str, Any]:
        if sub["status"] == "canceled":
            raise LedgerError(400, f"Subscription {sub['_id']} is canceled")
        contact = self.store.contacts.get(sub.get("contactId", "")) or sub["contactSnapshot"]
        txn = self.ledger.add_transaction(
            location_id=sub["altId"],
            contact=contact,
            amount=as_amount(sub["amount"], "amount"),
            currency=sub["currency"],
            status="succeeded" if outcome == "succeeded" else "failed",
            entity_type="subscription",
            entity_id=sub["_id"],
            source=sub["entitySource"],
            live_mode=sub["liveMode"],
            provider=sub["paymentProviderType"],
            subscription_id=sub["_id"],
        )
        if outcome == "succeeded":
            recurring = sub["recurringProduct"]["price"].get("recurring", {})
            start = datetime.fromisoformat(sub["schedule"]["executeAt"].replace("Z", "+00:00"))
            end = add_interval(
                start, recurring.get("interval", "month"), int(recurring.get("intervalCount", 1))
            )
            sub["schedule"]["executeAt"] = iso(end)
            sub.update(status="active", subscriptionSnapshot=_period("active", start, end))
        else:
            sub["status"] = "past_due"
            sub["subscriptionSnapshot"]["status"] = "past_due"
        sub["updatedAt"] = self.store.now()
        return {"subscription": sub, "transaction": txn}

    def cancel(self, sub: Doc, *, by: str = "sandbox") -> Doc:
        if sub["status"] == "canceled":
            raise LedgerError(400, f"Subscription {sub['_id']} is already canceled")
        now = self.store.now()
        sub.update(status="canceled", canceledAt=now, canceledBy=by, updatedAt=now)
        sub["subscriptionSnapshot"].update(
            status="canceled", canceled_at=int(self.store.clock.time())
        )
        return sub


def _period(status: str, start: datetime, end: datetime) -> Doc:
    return {
        "status": status,
        "current_period_start": int(start.timestamp()),
        "current_period_end": int(end.timestamp()),
        "cancel_at_period_end": False,
    }


def subscription_list_view(sub: Doc) -> Doc:
    return {k: v for k, v in sub.items() if k not in _DETAIL_ONLY}


def subscription_view(sub: Doc) -> Doc:
    return {k: v for k, v in sub.items() if k not in _LIST_ONLY}
