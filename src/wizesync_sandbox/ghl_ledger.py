"""Orders and transactions of the fake GHL, and the rules that tie them together.

- An order's `paymentStatus` is computed from its succeeded transactions (captured) and their
  `amountRefunded`: unpaid, partially_paid (part captured, or part refunded), paid, refunded.
  Its `status` becomes `completed` once fully captured.
- A transaction of an order has `entityType: "order"`, `entityId: <order id>` (GHL's way to find an
  order's payments: `GET /payments/transactions?entityId=<orderId>`).
- Webhooks follow what GHL sends: OrderCreate, and OrderStatusUpdate when `status` changes. There
  is NO webhook for refunds or transactions (GHL has none): those are found by polling.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from wizesync_sandbox.ghl_state import Doc, GhlStore, clean, dec, hex_id, money

Emit = Callable[[str, Doc], None]

# Fields of the detail documents that list views leave out (GHL's list schemas are flatter).
_ORDER_LIST_FIELDS = (
    "_id",
    "altId",
    "altType",
    "contactId",
    "contactName",
    "contactEmail",
    "currency",
    "amount",
    "status",
    "paymentStatus",
    "liveMode",
    "createdAt",
    "updatedAt",
    "fulfillmentStatus",
)
_TXN_DETAIL_ONLY = ("contactSnapshot", "entitySource", "paymentProvider", "invoiceId")
_TXN_LIST_ONLY = (
    "entitySourceType",
    "entitySourceSubType",
    "entitySourceName",
    "entitySourceId",
    "contactName",
    "contactEmail",
    "paymentProviderType",
    "fulfilledAt",
    "paymentMethod",
)


class LedgerError(Exception):
    """A request GHL would refuse; `status` and `message` become GHL's error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Invalid(LedgerError):
    """422 with GHL's list of messages."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__(422, "; ".join(messages))
        self.messages = messages


def missing(body: Any, fields: tuple[str, ...], prefix: str = "") -> list[str]:
    """class-validator style messages for absent fields."""
    if not isinstance(body, dict):
        return [f"{prefix.rstrip('.') or 'body'} must be an object"]
    return [
        f"{prefix}{name} should not be empty"
        for name in fields
        if body.get(name) is None or body.get(name) == ""
    ]


class Ledger:
    def __init__(self, store: GhlStore, emit: Emit) -> None:
        self.store = store
        self.emit = emit

    # --- contacts and items ----------------------------------------------------------------------
    def contact_for(
        self, location_id: str, contact_id: str | None = None, fields: Doc | None = None
    ) -> Doc:
        if contact_id:
            contact = self.store.owned("contacts", contact_id, location_id)
            if contact is None:
                raise LedgerError(400, f"Contact {contact_id} not found in this location")
            return contact
        fields = dict(fields or {})
        fields.setdefault("email", f"buyer-{secrets.token_hex(3)}@example.com")
        return self.store.upsert_contact(location_id, fields)[0]

    def items_from_prices(self, location_id: str, lines: list[Doc]) -> list[Doc]:
        """Order items from `[{price_id, qty}]`, each carrying its product and price like GHL's."""
        items = []
        for line in lines:
            price = self.store.owned("prices", str(line.get("price_id", "")), location_id)
            if price is None:
                raise LedgerError(400, f"Price {line.get('price_id')} not found in this location")
            product = self.store.products[price["product"]]
            items.append(
                {
                    "_id": hex_id(),
                    "name": f"{product['name']} - {price['name']}",
                    "qty": int(line.get("qty", 1)),
                    "product": dict(product),
                    "price": dict(price),
                }
            )
        return items

    # --- orders --------------------------------------------------------------------------------
    def create_order(
        self,
        location_id: str,
        contact: Doc,
        items: list[Doc],
        *,
        source: Doc,
        currency: str | None = None,
        live_mode: bool = False,
        amount: Decimal | None = None,
        created_at: str | None = None,
    ) -> Doc:
        now = created_at or self.store.now()
        subtotal = sum((dec(i["price"]["amount"]) * i["qty"] for i in items), Decimal(0))
        total = subtotal if amount is None else amount
        order = clean(
            {
                "_id": hex_id(),
                "altId": location_id,
                "altType": "location",
                "locationId": location_id,
                "contactId": contact["id"],
                "contactName": contact.get("name"),
                "contactEmail": contact.get("email"),
                "currency": currency or (items[0]["price"]["currency"] if items else "USD"),
                "amount": money(total),
                "status": "pending",
                "paymentStatus": "unpaid",
                "liveMode": live_mode,
                "fulfillmentStatus": "unfulfilled",
                "contactSnapshot": _snapshot(contact),
                "amountSummary": {
                    "subtotal": money(subtotal),
                    "discount": money(subtotal - total),
                    "tax": 0,
                    "shipping": 0,
                },
                "taxSummary": [],
                "source": clean(source),
                "items": items,
                "createdAt": now,
                "updatedAt": now,
            }
        )
        self.store.orders[order["_id"]] = order
        return order

    def order_transactions(self, order_id: str) -> list[Doc]:
        return [
            t
            for t in self.store.transactions.values()
            if t.get("entityType") == "order" and t.get("entityId") == order_id
        ]

    def settle(self, order: Doc) -> None:
        """Recompute the order's payment state from its transactions; OrderStatusUpdate when the
        order's status changes."""
        succeeded = [
            t
            for t in self.order_transactions(order["_id"])
            if t["status"] in ("succeeded", "refunded", "partially_refunded")
        ]
        captured = sum((dec(t["amount"]) for t in succeeded), Decimal(0))
        refunded = sum((dec(t.get("amountRefunded", 0)) for t in succeeded), Decimal(0))
        amount = dec(order["amount"])
        if captured <= 0:
            payment_status = "unpaid"
        elif refunded >= captured:
            payment_status = "refunded"
        elif refunded > 0 or captured < amount:
            payment_status = "partially_paid"
        else:
            payment_status = "paid"
        status = order["status"]
        if status == "pending" and captured >= amount:
            status = "completed"
        changed = status != order["status"]
        order.update(paymentStatus=payment_status, status=status, updatedAt=self.store.now())
        if changed:
            self.emit("OrderStatusUpdate", order)

    def set_order_status(self, order: Doc, status: str) -> Doc:
        if status != order["status"]:
            order.update(status=status, updatedAt=self.store.now())
            self.emit("OrderStatusUpdate", order)
        return order

    # --- transactions --------------------------------------------------------------------------
    def add_transaction(
        self,
        *,
        location_id: str,
        contact: Doc,
        amount: Decimal,
        currency: str,
        status: str,
        entity_type: str,
        entity_id: str,
        source: Doc,
        live_mode: bool = False,
        provider: str = "manual",
        subscription_id: str | None = None,
        invoice_id: str | None = None,
        payment_method: Doc | None = None,
        meta: Doc | None = None,
    ) -> Doc:
        now = self.store.now()
        txn = clean(
            {
                "_id": hex_id(),
                "altId": location_id,
                "altType": "location",
                "contactId": contact["id"],
                "contactName": contact.get("name"),
                "contactEmail": contact.get("email"),
                "contactSnapshot": _snapshot(contact),
                "currency": currency,
                "amount": money(amount),
                "amountRefunded": 0,
                "status": status,
                "liveMode": live_mode,
                "entityType": entity_type,
                "entityId": entity_id,
                "entitySourceType": source["type"],
                "entitySourceSubType": source.get("subType"),
                "entitySourceId": source.get("id"),
                "entitySourceName": source.get("name"),
                "entitySource": clean(
                    {
                        "type": source["type"],
                        "id": source.get("id") or entity_id,
                        "name": source.get("name"),
                        "subType": source.get("subType"),
                    }
                ),
                "subscriptionId": subscription_id,
                "invoiceId": invoice_id,
                "chargeId": charge_id_for(provider),
                "paymentProviderType": provider,
                "paymentProvider": {"type": provider},
                "paymentMethod": payment_method,
                "meta": meta,
                "createdAt": now,
                "updatedAt": now,
                "fulfilledAt": now,
            }
        )
        self.store.transactions[txn["_id"]] = txn
        return txn

    def refund(self, txn: Doc, amount: Decimal | None = None, status: str | None = None) -> Doc:
        if txn["status"] not in ("succeeded", "partially_refunded"):
            raise LedgerError(400, f"Transaction {txn['_id']} is {txn['status']}, not refundable")
        refundable = dec(txn["amount"]) - dec(txn.get("amountRefunded", 0))
        amount = refundable if amount is None else amount
        if amount <= 0 or amount > refundable:
            raise LedgerError(400, f"Refund amount must be above 0 and at most {refundable}")
        txn["amountRefunded"] = money(dec(txn.get("amountRefunded", 0)) + amount)
        if status:  # whether GHL changes the status on refund is unconfirmed: opt-in
            txn["status"] = status
        txn["updatedAt"] = self.store.now()
        if txn.get("entityType") == "order" and txn.get("entityId") in self.store.orders:
            self.settle(self.store.orders[txn["entityId"]])
        return txn


def charge_id_for(provider: str) -> str:
    """The payment's id at its provider, in that provider's shape (the fake gateways refund
    by it): Stripe `ch_...`, NMI and Authorize.net numeric transaction ids."""
    kind = provider.lower().replace("_", "-")
    if kind == "nmi":
        return str(secrets.randbelow(9 * 10**9) + 10**9)
    if kind in ("authorize-net", "authorizenet"):
        return str(secrets.randbelow(9 * 10**10) + 10**10)
    return f"ch_{secrets.token_hex(12)}"


# --- views -----------------------------------------------------------------------------------
def order_list_view(order: Doc) -> Doc:
    view = {k: order[k] for k in _ORDER_LIST_FIELDS if k in order}
    source = order.get("source", {})
    view.update(
        clean(
            {
                "sourceType": source.get("type"),
                "sourceId": source.get("id"),
                "sourceName": source.get("name"),
                "sourceSubType": source.get("subType"),
                "subtotal": order.get("amountSummary", {}).get("subtotal"),
                "discount": order.get("amountSummary", {}).get("discount"),
                "totalProducts": len(order.get("items", [])),
                "onetimeProducts": sum(
                    1 for i in order.get("items", []) if i["price"].get("type") != "recurring"
                ),
                "recurringProducts": sum(
                    1 for i in order.get("items", []) if i["price"].get("type") == "recurring"
                ),
            }
        )
    )
    return view


def order_view(order: Doc) -> Doc:
    return {k: v for k, v in order.items() if k != "locationId"}


def transaction_list_view(txn: Doc) -> Doc:
    return {k: v for k, v in txn.items() if k not in _TXN_DETAIL_ONLY}


def transaction_view(txn: Doc) -> Doc:
    return {k: v for k, v in txn.items() if k not in _TXN_LIST_ONLY}


def _snapshot(contact: Doc) -> Doc:
    keep = (
        "id",
        "locationId",
        "firstName",
        "lastName",
        "name",
        "email",
        "phone",
        "companyName",
        "dnd",
        "source",
        "tags",
        "dateAdded",
    )
    return {k: contact[k] for k in keep if k in contact}


def as_amount(value: Any, field: str) -> Decimal:
    try:
        return dec(value)
    except ValueError as exc:
        raise LedgerError(422, f"{field} must be a number") from exc
