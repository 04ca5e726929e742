"""The fake GHL's data, in memory, stored as the documents GHL answers with.

Object ids are 24-hex like GHL's Mongo ids (orders, invoices, transactions, products, prices...);
location, company, contact and user ids are 20-character alphanumerics like GHL's.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from wizesync_sandbox.clock import Clock, iso

Doc = dict[str, Any]
_ALNUM = string.ascii_letters + string.digits


def hex_id() -> str:
    return secrets.token_hex(12)


def alnum_id(length: int = 20) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def dec(value: Any) -> Decimal:
    """Money as Decimal (major units); raises ValueError on anything that is not a number."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not an amount: {value!r}")
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return result


def money(value: Decimal | int | float) -> int | float:
    """A JSON number in major units, the way GHL (JavaScript) writes it: 149 or 150.1."""
    cents = dec(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return int(cents) if cents == cents.to_integral_value() else float(cents)


def clean(doc: Doc) -> Doc:
    """Drop None values: GHL omits absent fields rather than sending null."""
    return {k: v for k, v in doc.items() if v is not None}


@dataclass
class GhlStore:
    clock: Clock
    locations: dict[str, Doc] = field(default_factory=dict)
    contacts: dict[str, Doc] = field(default_factory=dict)
    products: dict[str, Doc] = field(default_factory=dict)
    prices: dict[str, Doc] = field(default_factory=dict)
    invoices: dict[str, Doc] = field(default_factory=dict)
    orders: dict[str, Doc] = field(default_factory=dict)
    fulfillments: dict[str, list[Doc]] = field(default_factory=dict)  # by order id
    transactions: dict[str, Doc] = field(default_factory=dict)
    subscriptions: dict[str, Doc] = field(default_factory=dict)
    providers: dict[str, Doc] = field(default_factory=dict)
    invoice_numbers: dict[str, int] = field(default_factory=dict)

    COLLECTIONS = (
        "locations",
        "contacts",
        "products",
        "prices",
        "invoices",
        "orders",
        "fulfillments",
        "transactions",
        "subscriptions",
        "providers",
    )

    def reset(self) -> None:
        for name in self.COLLECTIONS:
            getattr(self, name).clear()
        self.invoice_numbers.clear()

    def now(self) -> str:
        return iso(self.clock.now())

    def dump(self, location_id: str | None = None) -> dict[str, Any]:
        def keep(doc: Doc) -> bool:
            return location_id is None or location_id in (
                doc.get("altId"),
                doc.get("locationId"),
                doc.get("id"),
            )

        out: dict[str, Any] = {}
        for name in self.COLLECTIONS:
            if name == "fulfillments":
                out[name] = {
                    order_id: docs
                    for order_id, docs in self.fulfillments.items()
                    if location_id is None or any(keep(d) for d in docs)
                }
            else:
                out[name] = [d for d in getattr(self, name).values() if keep(d)]
        return out

    # --- locations ---------------------------------------------------------------------------
    def add_location(
        self,
        *,
        id: str | None = None,
        name: str | None = None,
        company_id: str | None = None,
        pit: bool = True,
        private_token: str | None = None,
        active: bool = True,
        currency: str = "USD",
    ) -> Doc:
        location_id = id or alnum_id()
        doc = {
            "id": location_id,
            "name": name or f"Sandbox location {location_id[:6]}",
            "companyId": company_id or alnum_id(),
            "pit": pit,
            "privateToken": private_token,
            "active": active,
            "currency": currency,
            "createdAt": self.now(),
        }
        self.locations[location_id] = doc
        return doc

    # --- contacts ----------------------------------------------------------------------------
    CONTACT_FIELDS = (
        "firstName",
        "lastName",
        "name",
        "email",
        "phone",
        "companyName",
        "address1",
        "city",
        "state",
        "postalCode",
        "country",
        "website",
        "timezone",
        "source",
        "gender",
        "assignedTo",
    )

    def upsert_contact(self, location_id: str, fields: Doc) -> tuple[Doc, bool]:
        """GHL's upsert: match by email (case-insensitive), then by phone, within the location."""
        existing = self.find_contact(
            location_id, email=fields.get("email"), phone=fields.get("phone")
        )
        now = self.now()
        doc = existing or {
            "id": alnum_id(),
            "locationId": location_id,
            "type": "lead",
            "dateAdded": now,
            "tags": [],
            "dnd": False,
        }
        for key in self.CONTACT_FIELDS:
            if isinstance(fields.get(key), str):
                doc[key] = fields[key]
        if isinstance(fields.get("tags"), list):
            doc["tags"] = sorted({*doc.get("tags", []), *map(str, fields["tags"])})
        if isinstance(fields.get("dnd"), bool):
            doc["dnd"] = fields["dnd"]
        first, last = doc.get("firstName", ""), doc.get("lastName", "")
        full = " ".join(p for p in (first, last) if p)
        if full and "name" not in fields:
            doc["name"] = full
        if doc.get("email"):
            doc["emailLowerCase"] = doc["email"].lower()
        for key, value in (
            ("firstNameLowerCase", first),
            ("lastNameLowerCase", last),
            ("fullNameLowerCase", full),
        ):
            if value:
                doc[key] = value.lower()
        doc["dateUpdated"] = now
        self.contacts[doc["id"]] = doc
        return doc, existing is None

    def find_contact(
        self, location_id: str, *, email: str | None = None, phone: str | None = None
    ) -> Doc | None:
        for doc in self.contacts.values():
            if doc["locationId"] != location_id:
                continue
            if email and doc.get("emailLowerCase") == email.lower():
                return doc
        for doc in self.contacts.values():
            if doc["locationId"] == location_id and phone and doc.get("phone") == phone:
                return doc
        return None

    # --- products and prices -----------------------------------------------------------------
    def add_product(
        self,
        location_id: str,
        *,
        name: str,
        product_type: str = "SERVICE",
        description: str | None = None,
        id: str | None = None,
    ) -> Doc:
        now = self.now()
        doc = clean(
            {
                "_id": id or hex_id(),
                "locationId": location_id,
                "name": name,
                "productType": product_type,
                "description": description,
                "availableInStore": True,
                "variants": [],
                "collectionIds": [],
                "taxes": [],
                "isTaxesEnabled": False,
                "createdAt": now,
                "updatedAt": now,
            }
        )
        self.products[doc["_id"]] = doc
        return doc

    def add_price(
        self,
        product_id: str,
        *,
        name: str,
        amount: Any,
        currency: str = "USD",
        type: str = "one_time",
        interval: str | None = None,
        interval_count: int = 1,
        id: str | None = None,
    ) -> Doc:
        product = self.products[product_id]
        now = self.now()
        doc: Doc = {
            "_id": id or hex_id(),
            "locationId": product["locationId"],
            "product": product_id,
            "name": name,
            "type": type,
            "currency": currency,
            "amount": money(dec(amount)),
            "variantOptionIds": [],
            "membershipOffers": [],
            "trackInventory": False,
            "allowOutOfStockPurchases": True,
            "createdAt": now,
            "updatedAt": now,
        }
        if type == "recurring":
            doc["recurring"] = {"interval": interval or "month", "intervalCount": interval_count}
        self.prices[doc["_id"]] = doc
        return doc

    # --- lookups -------------------------------------------------------------------------------
    def owned(self, collection: str, object_id: str, location_id: str) -> Doc | None:
        """An object of this location, or None (GHL answers 404 for other locations' ids too)."""
        doc = getattr(self, collection).get(object_id)
        if doc is None:
            return None
        owner = doc.get("altId") or doc.get("locationId")
        return doc if owner == location_id else None


def page(docs: list[Doc], limit: Any, offset: Any, default_limit: int = 10) -> list[Doc]:
    """GHL's limit/offset paging; nonsense values fall back to the defaults."""
    try:
        size = int(float(limit)) if limit not in (None, "") else default_limit
    except ValueError:
        size = default_limit
    try:
        start = max(int(float(offset)), 0) if offset not in (None, "") else 0
    except ValueError:
        start = 0
    if size <= 0:
        return docs[start:]
    return docs[start : start + size]
