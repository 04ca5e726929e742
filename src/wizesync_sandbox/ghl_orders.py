"""Order-side operations of the fake GHL: checkouts (the only way GHL makes orders besides
invoices), order record-payment, fulfillments, refunds and failed payments."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from wizesync_sandbox.ghl_ledger import Invalid, Ledger, LedgerError, as_amount, missing
from wizesync_sandbox.ghl_state import Doc, clean, hex_id
from wizesync_sandbox.ghl_subscriptions import Subscriptions

_MODES = ("cash", "card", "cheque", "bank_transfer", "other")


class Orders:
    def __init__(self, ledger: Ledger, subscriptions: Subscriptions) -> None:
        self.ledger = ledger
        self.store = ledger.store
        self.subscriptions = subscriptions

    def checkout(
        self,
        location_id: str,
        *,
        items: list[Doc],
        contact_id: str | None = None,
        contact: Doc | None = None,
        outcome: str = "paid",
        source: Doc | None = None,
        live_mode: bool = False,
        provider: str = "stripe",
    ) -> dict[str, Any]:
        """A customer pays (or fails to pay) through a GHL checkout: funnel, store, payment link.
        Recurring prices start a subscription."""
        if not items:
            raise LedgerError(400, "a checkout needs at least one item")
        buyer = self.ledger.contact_for(location_id, contact_id, contact)
        lines = self.ledger.items_from_prices(location_id, items)
        source = clean(
            {
                "type": "funnel",
                "subType": "one_step_order_form",
                "id": hex_id(),
                "name": "Sandbox checkout",
                **(source or {}),
            }
        )
        order = self.ledger.create_order(
            location_id, buyer, lines, source=source, live_mode=live_mode
        )
        self.ledger.emit("OrderCreate", order)
        result: dict[str, Any] = {"order": order, "transaction": None, "subscription": None}
        if outcome == "pending":
            return result
        recurring = [i for i in lines if i["price"].get("type") == "recurring"]
        subscription = None
        if recurring and outcome == "paid":
            subscription = self.subscriptions.start(order, buyer, recurring, provider=provider)
            result["subscription"] = subscription
        txn = self.ledger.add_transaction(
            location_id=location_id,
            contact=buyer,
            amount=as_amount(order["amount"], "amount"),
            currency=order["currency"],
            status="succeeded" if outcome == "paid" else "failed",
            entity_type="order",
            entity_id=order["_id"],
            source=source,
            live_mode=live_mode,
            provider=provider,
            subscription_id=subscription["_id"] if subscription else None,
            payment_method={"card": {"brand": "visa", "last4": "4242"}},
        )
        result["transaction"] = txn
        self.ledger.settle(order)
        return result

    def record_payment(self, order: Doc, body: Doc) -> Doc:
        """`POST /payments/orders/{orderId}/record-payment`: an offline payment on an open order."""
        errors = missing(body, ("altId", "altType", "mode"))
        if body.get("mode") and body["mode"] not in _MODES:
            errors.append("mode must be one of the following values: " + ", ".join(_MODES))
        if errors:
            raise Invalid(errors)
        paid = sum(
            (
                as_amount(t["amount"], "amount")
                for t in self.ledger.order_transactions(order["_id"])
                if t["status"] == "succeeded"
            ),
            Decimal(0),
        )
        due = as_amount(order["amount"], "amount") - paid
        if due <= 0:
            raise LedgerError(400, "Order is already paid")
        amount = due if body.get("amount") is None else as_amount(body["amount"], "amount")
        if amount <= 0 or amount > due:
            raise LedgerError(400, f"Amount must be above 0 and at most the amount due ({due})")
        if body.get("isPartialPayment") is False and amount != due:
            raise LedgerError(400, "Amount does not match the amount due")
        contact = self.store.contacts.get(order.get("contactId", "")) or order["contactSnapshot"]
        self.ledger.add_transaction(
            location_id=order["altId"],
            contact=contact,
            amount=amount,
            currency=order["currency"],
            status="succeeded",
            entity_type="order",
            entity_id=order["_id"],
            source=order["source"],
            live_mode=order["liveMode"],
            meta=clean({"mode": body["mode"], "notes": body.get("notes")}),
        )
        self.ledger.settle(order)
        return {"success": True}

    def fail_payment(
        self, order: Doc, amount: Decimal | None = None, reason: str = "card_declined"
    ) -> Doc:
        contact = self.store.contacts.get(order.get("contactId", "")) or order["contactSnapshot"]
        txn = self.ledger.add_transaction(
            location_id=order["altId"],
            contact=contact,
            amount=amount if amount is not None else as_amount(order["amount"], "amount"),
            currency=order["currency"],
            status="failed",
            entity_type="order",
            entity_id=order["_id"],
            source=order["source"],
            live_mode=order["liveMode"],
            provider="stripe",
            meta={"failureReason": reason},
        )
        self.ledger.settle(order)
        return txn

    # --- fulfillments --------------------------------------------------------------------------
    def create_fulfillment(self, order: Doc, body: Doc) -> Doc:
        errors = missing(body, ("altId", "altType", "trackings", "items", "notifyCustomer"))
        if errors:
            raise Invalid(errors)
        if not isinstance(body["items"], list) or not body["items"]:
            raise Invalid(["items must contain at least 1 elements"])
        done = self._fulfilled_qty(order["_id"])
        lines = []
        for n, wanted in enumerate(body["items"]):
            errors = missing(wanted, ("priceId", "qty"), f"items.{n}.")
            if errors:
                raise Invalid(errors)
            item = next((i for i in order["items"] if i["price"]["_id"] == wanted["priceId"]), None)
            if item is None:
                raise LedgerError(400, f"Price {wanted['priceId']} is not an item of this order")
            left = item["qty"] - done.get(wanted["priceId"], 0)
            if wanted["qty"] <= 0 or wanted["qty"] > left:
                raise LedgerError(400, f"Only {left} of {item['name']} left to fulfil")
            lines.append({**copy.deepcopy(item), "qty": wanted["qty"]})
        now = self.store.now()
        trackings = [
            clean({k: t.get(k) for k in ("trackingNumber", "shippingCarrier", "trackingUrl")})
            for t in body["trackings"]
            if isinstance(t, dict)
        ]
        fulfillment = {
            "_id": hex_id(),
            "altId": order["altId"],
            "altType": "location",
            "trackings": trackings,
            "items": lines,
            "createdAt": now,
            "updatedAt": now,
        }
        self.store.fulfillments.setdefault(order["_id"], []).append(fulfillment)
        done = self._fulfilled_qty(order["_id"])
        complete = all(done.get(i["price"]["_id"], 0) >= i["qty"] for i in order["items"])
        order.update(
            fulfillmentStatus="fulfilled" if complete else "partially_fulfilled", updatedAt=now
        )
        return fulfillment

    def _fulfilled_qty(self, order_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for fulfillment in self.store.fulfillments.get(order_id, []):
            for item in fulfillment["items"]:
                counts[item["price"]["_id"]] = counts.get(item["price"]["_id"], 0) + item["qty"]
        return counts
