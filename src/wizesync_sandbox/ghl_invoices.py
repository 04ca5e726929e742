"""Invoices of the fake GHL: create, record payment, void.

Recording payments until nothing is due makes the invoice `paid` and creates an order with
`source: {type: "invoice", id: <invoice id>}`; every payment of the invoice becomes a succeeded
transaction of that order (`entityType: "order"`, `entityId: <order id>`, `invoiceId`). Payments
made while the invoice is only partially paid are transactions of the invoice (`entityType:
"invoice"`) until the order exists; then they move to the order, so an order's transactions always
add up to what was paid for it. `GET /payments/transactions?entityId=<invoice id>` still finds
an invoice's payments (GHL-FACTS: entityId is an order or an invoice id). (That GHL makes such an
order is plausible but unconfirmed.)
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from wizesync_sandbox.ghl_ledger import Invalid, Ledger, LedgerError, as_amount, missing
from wizesync_sandbox.ghl_state import Doc, clean, hex_id, money

_REQUIRED = (
    "altId",
    "altType",
    "name",
    "businessDetails",
    "currency",
    "items",
    "discount",
    "contactDetails",
    "issueDate",
    "sentTo",
    "liveMode",
)
_ITEM_REQUIRED = ("name", "currency", "amount", "qty")
_PAYMENT_MODES = ("cash", "card", "cheque", "bank_transfer", "other")


class Invoices:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.store = ledger.store

    def create(self, location_id: str, body: Doc) -> Doc:
        errors = missing(body, _REQUIRED)
        raw_items = body.get("items")
        items: list[Any] = raw_items if isinstance(raw_items, list) else []
        if "items" in body and not items:
            errors.append("items must contain at least 1 elements")
        for n, item in enumerate(items):
            errors += missing(item, _ITEM_REQUIRED, f"items.{n}.")
        errors += missing(body.get("contactDetails") or {}, ("id",), "contactDetails.")
        raw_discount = body.get("discount")
        discount: Doc = raw_discount if isinstance(raw_discount, dict) else {}
        if discount and discount.get("type") not in ("percentage", "fixed"):
            errors.append("discount.type must be one of the following values: percentage, fixed")
        if body.get("altType") not in (None, "location"):
            errors.append("altType must be one of the following values: location")
        if errors:
            raise Invalid(errors)
        lines, subtotal = [], Decimal(0)
        for n, item in enumerate(items):
            amount, qty = as_amount(item["amount"], f"items.{n}.amount"), item["qty"]
            if not isinstance(qty, int | float) or qty <= 0:
                raise Invalid([f"items.{n}.qty must be a positive number"])
            subtotal += amount * Decimal(str(qty))
            lines.append(
                clean(
                    {
                        "_id": hex_id(),
                        "productId": item.get("productId"),
                        "priceId": item.get("priceId"),
                        "name": item["name"],
                        "description": item.get("description"),
                        "currency": item["currency"],
                        "amount": money(amount),
                        "qty": qty,
                        "type": item.get("type"),
                        "taxes": [],
                    }
                )
            )
        off = as_amount(discount.get("value", 0) or 0, "discount.value")
        off = subtotal * off / 100 if discount.get("type") == "percentage" else off
        total = max(subtotal - off, Decimal(0))
        now = self.store.now()
        number = self._number(location_id, body.get("invoiceNumber"))
        invoice = clean(
            {
                "_id": hex_id(),
                "status": "draft",
                "liveMode": bool(body["liveMode"]),
                "amountPaid": 0,
                "altId": location_id,
                "altType": "location",
                "name": body["name"],
                "businessDetails": body["businessDetails"],
                "invoiceNumber": number,
                "currency": body["currency"],
                "contactDetails": body["contactDetails"],
                "issueDate": body["issueDate"],
                "dueDate": body.get("dueDate") or body["issueDate"],
                "discount": discount,
                "invoiceItems": lines,
                "total": money(total),
                "title": body.get("title") or "INVOICE",
                "amountDue": money(total),
                "termsNotes": body.get("termsNotes"),
                "sentTo": body["sentTo"],
                "automaticTaxesEnabled": bool(body.get("automaticTaxesEnabled", False)),
                "totalSummary": {"subTotal": money(subtotal), "discount": money(off), "tax": 0},
                "createdAt": now,
                "updatedAt": now,
            }
        )
        self.store.invoices[invoice["_id"]] = invoice
        self.ledger.emit("InvoiceCreate", invoice_webhook(invoice))
        return invoice

    def _number(self, location_id: str, wanted: Any) -> int:
        current = self.store.invoice_numbers.get(location_id, 0)
        number = int(wanted) if str(wanted or "").isdigit() else current + 1
        self.store.invoice_numbers[location_id] = max(current, number)
        return number

    def record_payment(self, invoice: Doc, body: Doc) -> Doc:
        errors = missing(body, ("altId", "altType", "mode"))
        if body.get("mode") and body["mode"] not in _PAYMENT_MODES:
            errors.append("mode must be one of the following values: " + ", ".join(_PAYMENT_MODES))
        if errors:
            raise Invalid(errors)
        if invoice["status"] == "void":
            raise LedgerError(400, "Invoice is void")
        if invoice["status"] == "paid":
            raise LedgerError(400, "Invoice is already paid")
        due = as_amount(invoice["amountDue"], "amountDue")
        amount = due if body.get("amount") is None else as_amount(body["amount"], "amount")
        if amount <= 0 or amount > due:
            raise LedgerError(400, f"Amount must be above 0 and at most the amount due ({due})")
        location_id = invoice["altId"]
        contact = self._contact(invoice)
        source = {"type": "invoice", "id": invoice["_id"], "name": invoice["name"]}
        card = body.get("card") if body.get("mode") == "card" else None
        self.ledger.add_transaction(
            location_id=location_id,
            contact=contact,
            amount=amount,
            currency=invoice["currency"],
            status="succeeded",
            entity_type="invoice",
            entity_id=invoice["_id"],
            source=source,
            live_mode=invoice["liveMode"],
            invoice_id=invoice["_id"],
            payment_method={"card": card} if card else None,
            meta=clean({"mode": body["mode"], "notes": body.get("notes")}),
        )
        paid = as_amount(invoice["amountPaid"], "amountPaid") + amount
        invoice.update(
            amountPaid=money(paid),
            amountDue=money(due - amount),
            status="paid" if due - amount <= 0 else "partially_paid",
            updatedAt=self.store.now(),
        )
        event = "InvoicePaid" if invoice["status"] == "paid" else "InvoicePartiallyPaid"
        self.ledger.emit(event, invoice_webhook(invoice))
        if invoice["status"] == "paid":
            self._order_for(invoice, contact, source)
        return {"success": True, "invoice": invoice_view(invoice)}

    def _contact(self, invoice: Doc) -> Doc:
        details = invoice["contactDetails"]
        known = self.store.owned("contacts", details.get("id", ""), invoice["altId"])
        if known is not None:
            return known
        return clean(
            {
                "id": details.get("id"),
                "name": details.get("name"),
                "email": details.get("email"),
                "phone": details.get("phoneNo"),
                "locationId": invoice["altId"],
            }
        )

    def _order_for(self, invoice: Doc, contact: Doc, source: Doc) -> Doc:
        items = [self._order_item(invoice["altId"], line) for line in invoice["invoiceItems"]]
        order = self.ledger.create_order(
            invoice["altId"],
            contact,
            items,
            source=source,
            currency=invoice["currency"],
            live_mode=invoice["liveMode"],
            amount=as_amount(invoice["total"], "total"),
        )
        for txn in self.store.transactions.values():
            if txn.get("invoiceId") == invoice["_id"]:
                txn.update(entityType="order", entityId=order["_id"])
        self.ledger.emit("OrderCreate", order)
        self.ledger.settle(order)
        return order

    def _order_item(self, location_id: str, line: Doc) -> Doc:
        price = self.store.owned("prices", line.get("priceId", ""), location_id)
        product = self.store.owned("products", line.get("productId", ""), location_id)
        now = self.store.now()
        if product is None:
            product = {
                "_id": line.get("productId") or hex_id(),
                "locationId": location_id,
                "name": line["name"],
                "productType": "SERVICE",
                "createdAt": now,
                "updatedAt": now,
            }
        if price is None:
            price = {
                "_id": line.get("priceId") or hex_id(),
                "name": line["name"],
                "type": line.get("type", "one_time"),
                "currency": line["currency"],
                "amount": line["amount"],
                "product": product["_id"],
            }
        else:
            # What was invoiced is what was sold, whatever the catalogue price says today.
            price = {**price, "amount": line["amount"]}
        return {
            "_id": hex_id(),
            "name": line["name"],
            "qty": line["qty"],
            "product": copy.deepcopy(product),
            "price": copy.deepcopy(price),
        }

    def void(self, invoice: Doc, body: Doc) -> Doc:
        errors = missing(body, ("altId", "altType"))
        if errors:
            raise Invalid(errors)
        if invoice["status"] == "void":
            raise LedgerError(400, "Invoice is already void")
        if invoice["status"] in ("paid", "partially_paid"):
            raise LedgerError(400, "An invoice with payments cannot be voided")
        invoice.update(status="void", updatedAt=self.store.now())
        self.ledger.emit("InvoiceVoid", invoice_webhook(invoice))
        return invoice_view(invoice)


def invoice_view(invoice: Doc) -> Doc:
    return {k: v for k, v in invoice.items() if k != "sentTo"}


def invoice_webhook(invoice: Doc) -> Doc:
    """Webhook bodies carry the invoice number as a string (see webhooks/InvoicePaid.json)."""
    return {**invoice_view(invoice), "invoiceNumber": str(invoice["invoiceNumber"])}
