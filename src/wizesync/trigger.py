"""`wizesync trigger <event-type>`: a correctly signed sample event, aimed at things that exist.

A sample that names a GHL location the service has no install for, or an order nobody knows,
only shows an operator an error on their first try. So, when the service talks to a sandbox (the
built-in one of `make run`, or a `wizesync sandbox` process that GHL_API_URL points at), the
sample is built from what the sandbox holds:

- GHL `Order*`: the location's newest order (a checkout is made in the sandbox when it has none);
- GHL `Invoice*`: the location's newest invoice in the event's status, else its newest invoice;
- GHL `INSTALL`/`UNINSTALL`: the sandbox location;
- Wizehire `order.created`: a new sample order, also recorded as Wizehire's own (the fake
  Wizehire's `GET /v1/orders` then lists it, as the real one would);
- Wizehire `order.updated`: Wizehire's newest order, as Wizehire holds it;
- Wizehire `refund.requested`: a refund of Wizehire's newest order that reached GHL and is paid.

Against a real GHL (no sandbox) the samples name the configured location and `--order-id`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from wizesync import devmode, samples
from wizesync.config import Settings
from wizesync.devmode import DEFAULT_LOCATION_ID, SANDBOX_APP_ID

# The contract's order fields: what Wizehire sends, without what the fake adds (sync, updated_at).
ORDER_FIELDS = (
    "id",
    "account_id",
    "status",
    "currency",
    "amount",
    "customer",
    "items",
    "ghl_location_id",
    "ghl_order_id",
    "created_at",
    "metadata",
)
INVOICE_STATUS = {
    "InvoicePaid": "paid",
    "InvoicePartiallyPaid": "partially_paid",
    "InvoiceVoid": "void",
}
REFUNDABLE = ("paid", "partially_refunded")
SAMPLE_REFUND = Decimal("49.00")


class TriggerError(Exception):
    """What stops a trigger, in words (exit 1)."""


@dataclass(frozen=True)
class Built:
    source: str  # "wizehire" | "ghl"
    body: dict[str, Any]
    note: str | None = None  # what the sample points at, for the operator


def sandbox_url(settings: Settings, service_url: str) -> str | None:
    """The sandbox's base URL (its control plane is `<base>/_sandbox`), or None for a real GHL:
    the service's built-in one at `/sandbox`, else the `wizesync sandbox` GHL_API_URL names."""
    if devmode.plan(settings) is not None:
        return service_url.rstrip("/") + devmode.MOUNT_PATH
    api = settings.ghl_api_url.rstrip("/")
    if not settings.is_production and api.endswith("/ghl"):
        return api.removesuffix("/ghl")
    return None


class Sandbox:
    def __init__(self, http: httpx.Client, base: str, location_id: str) -> None:
        self.http, self.base, self.location_id = http, base.rstrip("/"), location_id

    def reachable(self) -> bool:
        try:
            return self.http.get(f"{self.base}/_sandbox/config").status_code == 200
        except httpx.HTTPError:
            return False

    def _get(self, path: str, **params: Any) -> Any:
        response = self.http.get(f"{self.base}/_sandbox{path}", params=params)
        response.raise_for_status()
        return response.json()

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = self.http.post(f"{self.base}/_sandbox{path}", json=body)
        if response.status_code >= 300:
            raise TriggerError(
                f"the sandbox refused {path}: {response.status_code} {response.text[:300]}"
            )
        return response.json()

    def ghl(self) -> dict[str, Any]:
        return dict(self._get("/state", location_id=self.location_id)["ghl"])

    def wizehire_orders(self) -> list[dict[str, Any]]:
        return list(self._get("/wizehire/orders")["data"])

    def newest_order(self) -> tuple[dict[str, Any], str | None]:
        orders = _newest_first(self.ghl()["orders"])
        if orders:
            return orders[0], None
        return self._checkout(), "the sandbox had no order yet: a checkout made one"

    def _checkout(self) -> dict[str, Any]:
        prices = self.ghl().get("prices") or []
        if not prices:
            raise TriggerError(
                f"sandbox location {self.location_id} has no product to buy; "
                "seed it (POST /_sandbox/ghl/seed) or pass --order-id"
            )
        bought = self._post(
            "/ghl/checkout",
            {
                "location_id": self.location_id,
                "items": [{"price_id": prices[0]["_id"], "qty": 1}],
                "contact": {"email": "trigger@example.com", "firstName": "Sample"},
            },
        )
        return dict(bought["order"])

    def record_wizehire_order(self, order: dict[str, Any]) -> None:
        self._post("/wizehire/orders", order)


def build(
    event_type: str,
    *,
    settings: Settings,
    service_url: str,
    order_id: str | None,
    http: httpx.Client,
) -> Built:
    """The event to send; raises KeyError for an unknown type, TriggerError in words."""
    if event_type not in samples.WIZEHIRE_TYPES + samples.GHL_TYPES:
        raise KeyError(event_type)
    base = sandbox_url(settings, service_url)
    location = settings.ghl_location_id or DEFAULT_LOCATION_ID
    if devmode.plan(settings) is not None:
        location = DEFAULT_LOCATION_ID  # the built-in sandbox ignores GHL_LOCATION_ID
    sandbox = Sandbox(http, base, location) if base else None
    if sandbox is not None and not sandbox.reachable():
        raise TriggerError(
            f"could not reach the sandbox at {base}: start the service with `make run` "
            "(`wizesync dev`), or `wizesync sandbox`, first"
        )
    if event_type in samples.WIZEHIRE_TYPES:
        return _wizehire(event_type, sandbox, order_id)
    # Install events name the app this service applies them for (the built-in sandbox's own).
    app_id = SANDBOX_APP_ID if devmode.plan(settings) is not None else settings.ghl_app_id
    return _ghl(event_type, sandbox, location, order_id, app_id)


def _wizehire(event_type: str, sandbox: Sandbox | None, order_id: str | None) -> Built:
    event = samples.wizehire_event(event_type, order_id)
    if sandbox is None:
        return Built("wizehire", event)
    if event_type == "order.created":
        sandbox.record_wizehire_order(event["data"]["order"])
        return Built("wizehire", event)
    known = sandbox.wizehire_orders()
    if order_id is not None:
        known = [o for o in known if o.get("id") == order_id]
    if event_type == "order.updated":
        if not known:
            raise TriggerError(_no_order(order_id, "update"))
        stored = known[-1]
        event["data"]["order"] = {
            **samples.wizehire_order(str(stored["id"])),
            **{k: stored[k] for k in ORDER_FIELDS if k in stored},
        }
        return Built("wizehire", event, f"Wizehire order {stored['id']}")
    refundable = [o for o in known if (o.get("ghl_sync") or {}).get("payment_status") in REFUNDABLE]
    if not refundable:
        raise TriggerError(_no_order(order_id, "refund", paid=True))
    order = refundable[-1]
    paid = Decimal(str(order.get("amount") or SAMPLE_REFUND))
    refunded = Decimal(str((order.get("ghl_sync") or {}).get("amount_refunded") or 0))
    amount = min(SAMPLE_REFUND, paid - refunded)
    if amount <= 0:
        raise TriggerError(f"Wizehire order {order['id']} is refunded in full already")
    refund = event["data"]["refund"]
    refund.update(
        order_id=order["id"],
        amount=f"{amount:.2f}",
        currency=order.get("currency") or refund["currency"],
    )
    return Built(
        "wizehire",
        event,
        f"a refund of {refund['amount']} {refund['currency']} of Wizehire order {order['id']}",
    )


def _no_order(order_id: str | None, what: str, *, paid: bool = False) -> str:
    kind = "synced and paid " if paid else ""
    if order_id:
        return f"the sandbox's Wizehire holds no {kind}order {order_id} to {what}"
    return (
        f"the sandbox's Wizehire holds no {kind}order to {what} yet: run "
        "`wizesync trigger order.created` first"
    )


def _ghl(
    event_type: str,
    sandbox: Sandbox | None,
    location: str,
    object_id: str | None,
    app_id: str | None = None,
) -> Built:
    if sandbox is None or event_type in ("INSTALL", "UNINSTALL"):
        return Built(
            "ghl", samples.ghl_event(event_type, object_id, location_id=location, app_id=app_id)
        )
    envelope = samples.ghl_event(event_type, location_id=location)
    head = {k: envelope[k] for k in ("type", "timestamp", "webhookId")}
    if event_type.startswith("Order"):
        if object_id is not None:
            found = [o for o in sandbox.ghl()["orders"] if o.get("_id") == object_id]
            if not found:
                raise TriggerError(f"sandbox location {location} has no order {object_id}")
            order, note = found[0], None
        else:
            order, note = sandbox.newest_order()
        return Built(
            "ghl",
            {**order, "locationId": order.get("altId") or location, **head},
            note or f"GHL order {order['_id']}",
        )
    invoices = _newest_first(sandbox.ghl()["invoices"])
    if object_id is not None:
        invoices = [i for i in invoices if i.get("_id") == object_id]
        if not invoices:
            raise TriggerError(f"sandbox location {location} has no invoice {object_id}")
    wanted = INVOICE_STATUS.get(event_type)
    invoice = next(
        (i for i in invoices if wanted and i.get("status") == wanted),
        invoices[0] if invoices else None,
    )
    if invoice is None:
        return Built(
            "ghl",
            envelope,
            "the sandbox has no invoice yet: a sample invoice id "
            "(the service ignores an invoice no order of its made)",
        )
    return Built("ghl", {**_invoice_webhook(invoice), **head}, f"GHL invoice {invoice['_id']}")


def _invoice_webhook(invoice: dict[str, Any]) -> dict[str, Any]:
    """An invoice as the sandbox holds it, as GHL's webhook body carries it: without `sentTo`,
    the invoice number a string (see webhooks/InvoicePaid.json)."""
    body = {k: v for k, v in invoice.items() if k != "sentTo"}
    return {**body, "invoiceNumber": str(invoice["invoiceNumber"])}


def _newest_first(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(docs, key=lambda d: str(d.get("createdAt") or ""), reverse=True)
