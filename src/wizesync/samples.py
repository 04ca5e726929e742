"""Sample events of every type the service handles: for `wizesync trigger`, tests and benchmarks.

GHL samples name the sandbox's location by default (the one `make run` serves), so a sample sent
to a development service is for a location it has an install for. `wizesync trigger` (see
`trigger.py`) goes further and fills in objects the sandbox really holds."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from wizesync.devmode import DEFAULT_LOCATION_ID


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def ghl_id() -> str:
    return secrets.token_hex(12)


def wizehire_order(order_id: str | None = None, *, status: str = "paid") -> dict[str, Any]:
    return {
        "id": order_id or f"wh_ord_{secrets.token_hex(4)}",
        "account_id": "acct_42",
        "status": status,
        "currency": "USD",
        "amount": "149.00",
        "customer": {
            "email": "pat@example.com",
            "first_name": "Pat",
            "last_name": "Lee",
            "phone": "+15555550100",
            "company": "Lee Plumbing",
        },
        "items": [
            {
                "sku": "JOB-BOOST-30",
                "name": "Job ad boost, 30 days",
                "quantity": 1,
                "unit_amount": "149.00",
            }
        ],
        "ghl_location_id": None,
        "ghl_order_id": None,
        "created_at": _now(),
        "metadata": {},
    }


def wizehire_event(event_type: str, order_id: str | None = None) -> dict[str, Any]:
    if event_type in ("order.created", "order.updated"):
        return {
            "type": event_type,
            "timestamp": _now(),
            "data": {"order": wizehire_order(order_id)},
        }
    if event_type == "refund.requested":
        return {
            "type": event_type,
            "timestamp": _now(),
            "data": {
                "refund": {
                    "id": f"wh_ref_{secrets.token_hex(4)}",
                    "order_id": order_id or "wh_ord_1001",
                    "amount": "49.00",
                    "currency": "USD",
                    "reason_code": "customer_request",
                    "note": "sample refund",
                }
            },
        }
    raise KeyError(event_type)


def ghl_event(
    event_type: str,
    object_id: str | None = None,
    location_id: str = DEFAULT_LOCATION_ID,
    app_id: str | None = None,
) -> dict[str, Any]:
    """A GHL webhook body; INSTALL/UNINSTALL name `app_id` (a service applies only its own)."""
    base: dict[str, Any] = {"type": event_type, "timestamp": _now(), "webhookId": ghl_id()}
    if event_type in ("OrderCreate", "OrderStatusUpdate"):
        return {
            **base,
            "_id": object_id or ghl_id(),
            "locationId": location_id,
            "altId": location_id,
            "altType": "location",
            "status": "completed" if event_type == "OrderStatusUpdate" else "pending",
            "currency": "USD",
            "amount": 149.0,
            "contactId": ghl_id(),
            "source": {"type": "invoice", "id": ghl_id()},
            "createdAt": _now(),
        }
    if event_type.startswith("Invoice"):
        status = {
            "InvoicePaid": "paid",
            "InvoicePartiallyPaid": "partially_paid",
            "InvoiceVoid": "void",
        }.get(event_type, "sent")
        return {
            **base,
            "_id": object_id or ghl_id(),
            "altId": location_id,
            "altType": "location",
            "status": status,
            "currency": "USD",
            "amountPaid": 149.0 if status == "paid" else 0,
            "total": 149.0,
        }
    if event_type in ("INSTALL", "UNINSTALL"):
        return {
            **base,
            "appId": app_id or ghl_id(),
            "locationId": location_id,
            "companyId": ghl_id(),
        }
    raise KeyError(event_type)


WIZEHIRE_TYPES = ("order.created", "order.updated", "refund.requested")
GHL_TYPES = (
    "OrderCreate",
    "OrderStatusUpdate",
    "InvoicePaid",
    "InvoicePartiallyPaid",
    "InvoiceVoid",
    "InvoiceCreate",
    "InvoiceUpdate",
    "INSTALL",
    "UNINSTALL",
)
