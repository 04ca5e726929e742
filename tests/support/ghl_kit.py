"""Test doubles and sample GHL answers for the GHL client tests (shaped like the official spec)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from wizesync.ghl.client import GhlClient
from wizesync.ghl.limits import RateLimiter, TokenProvider

BASE = "https://ghl.test"
VERSION = "2021-07-28"
LOC = "ve9EPM428h8vShlRW1KT"  # locations are 20-char alphanumerics
ORDER_ID = "653f5e0cde5a1314e62a837c"
INVOICE_ID = "6578278e879ad2646715ba9c"
TXN_ID = "61dd0feac077f72010f78804"
SUB_ID = "64bf78af39118e4011926cba"
PRODUCT_ID = "655b33a82209e60b6adb87a5"
PRICE_ID = "655b33aa2209e60b6adb87a7"
CONTACT_ID = "seD4PfOuKoVMLkEZqohJ"
WHEN = "2024-01-23T09:57:04.846Z"


@dataclass
class FakeTokens:
    """Hands out `tok-1`; after a rejection, `tok-2`, and so on. Records every rejection."""

    number: int = 1
    rejected: list[tuple[str, str]] = field(default_factory=list)

    @property
    def current(self) -> str:
        return f"tok-{self.number}-secret-value"

    async def access_token(self, location_id: str) -> str:
        return self.current

    async def token_rejected(self, location_id: str, token: str) -> None:
        self.rejected.append((location_id, token))
        self.number += 1


@dataclass
class RecordingLimiter:
    events: list[tuple[str, str, int | None]] = field(default_factory=list)

    async def acquire(self, location_id: str) -> None:
        self.events.append(("acquire", location_id, None))

    async def observe(self, location_id: str, status: int, headers: Mapping[str, str]) -> None:
        self.events.append(("observe", location_id, status))


@dataclass
class Sleeps:
    """Stands in for asyncio.sleep: records the waits, waits for nothing."""

    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def make_client(
    http: httpx.AsyncClient,
    *,
    tokens: TokenProvider | None = None,
    limiter: RateLimiter | None = None,
    sleep: Sleeps | None = None,
    **kwargs: Any,
) -> GhlClient:
    return GhlClient(
        http,
        base_url=BASE,
        version=VERSION,
        tokens=tokens or FakeTokens(),
        limiter=limiter or RecordingLimiter(),
        sleep=sleep or Sleeps(),
        **kwargs,
    )


# --- sample answers (each valid against the official spec, with the errata in ghl_spec) --------
def order(**over: Any) -> dict[str, Any]:
    return {
        "_id": ORDER_ID,
        "altId": LOC,
        "altType": "location",
        "contactId": CONTACT_ID,
        "currency": "USD",
        "amount": 150.1,
        "status": "completed",
        "paymentStatus": "paid",
        "fulfillmentStatus": "unfulfilled",
        "liveMode": True,
        "sourceType": "invoice",
        "source": {"type": "invoice", "id": INVOICE_ID},
        "items": [
            {
                "_id": "6578278e879ad2646715ba9d",
                "name": "Job ad",
                "qty": 1,
                "price": {"_id": PRICE_ID, "name": "Monthly", "amount": 150.1, "currency": "USD"},
            }
        ],
        "createdAt": WHEN,
        "updatedAt": WHEN,
        **over,
    }


def product() -> dict[str, Any]:
    return {
        "_id": PRODUCT_ID,
        "locationId": LOC,
        "name": "Job ad",
        "productType": "SERVICE",
        "createdAt": WHEN,
        "updatedAt": WHEN,
    }


def price(**over: Any) -> dict[str, Any]:
    return {
        "_id": PRICE_ID,
        "name": "Monthly",
        "type": "one_time",
        "currency": "USD",
        "amount": 150.1,
        "product": PRODUCT_ID,
        "locationId": LOC,
        "createdAt": WHEN,
        "updatedAt": WHEN,
        **over,
    }


def fulfillment() -> dict[str, Any]:
    return {
        "_id": "655b33a82209e60b6adb87b1",
        "altId": LOC,
        "altType": "location",
        "trackings": [
            {
                "trackingNumber": "40012345678",
                "shippingCarrier": "FedEx",
                "trackingUrl": "https://fedex.test/40012345678",
            }
        ],
        "items": [
            {
                "_id": "6578278e879ad2646715ba9d",
                "name": "Job ad",
                "qty": 1,
                "product": product(),
                "price": price(),
            }
        ],
        "createdAt": WHEN,
        "updatedAt": WHEN,
    }


def transaction(**over: Any) -> dict[str, Any]:
    return {
        "_id": TXN_ID,
        "altId": LOC,
        "altType": "location",
        "contactId": CONTACT_ID,
        "currency": "USD",
        "amount": 150.1,
        "amountRefunded": 20.05,
        "status": "succeeded",
        "liveMode": True,
        "entityType": "order",
        "entityId": ORDER_ID,
        "entitySourceType": "invoice",
        "chargeId": "ch_3Mx",
        "paymentProviderType": "nmi",
        "createdAt": WHEN,
        "updatedAt": WHEN,
        "fulfilledAt": WHEN,
        **over,
    }


def subscription(**over: Any) -> dict[str, Any]:
    return {
        "_id": SUB_ID,
        "altId": LOC,
        "altType": "location",
        "contactId": CONTACT_ID,
        "currency": "USD",
        "amount": 49.99,
        "status": "active",
        "liveMode": True,
        "entityType": "order",
        "entityId": ORDER_ID,
        "entitySourceType": "funnel",
        "schedule": {"executeAt": WHEN},
        "createdAt": WHEN,
        "updatedAt": WHEN,
        **over,
    }


def invoice(**over: Any) -> dict[str, Any]:
    return {
        "_id": INVOICE_ID,
        "status": "draft",
        "liveMode": True,
        "amountPaid": 0,
        "altId": LOC,
        "altType": "location",
        "name": "Wizehire order 1001",
        "businessDetails": {"name": "Acme"},
        "invoiceNumber": 1001,
        "currency": "USD",
        "contactDetails": {"id": CONTACT_ID, "name": "Ada", "email": "ada@example.com"},
        "issueDate": "2024-01-23",
        "dueDate": "2024-01-23",
        "invoiceItems": [
            {
                "_id": "6578278e879ad2646715ba9e",
                "name": "Job ad",
                "qty": 1,
                "amount": 150.1,
                "currency": "USD",
            }
        ],
        "total": 150.1,
        "title": "INVOICE",
        "amountDue": 150.1,
        "totalSummary": {"subTotal": 150.1, "discount": 0, "tax": 0},
        "createdAt": WHEN,
        "updatedAt": WHEN,
        **over,
    }


def contact() -> dict[str, Any]:
    return {
        "id": CONTACT_ID,
        "locationId": LOC,
        "email": "ada@example.com",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "tags": ["wizehire"],
        "dateAdded": WHEN,
    }


def whitelabel_provider() -> dict[str, Any]:
    return {
        "_id": "65cb47dda50f4f13ced4b870",
        "altId": LOC,
        "altType": "location",
        "title": "Wizehire Pay",
        "route": "wizehire-nmi",
        "provider": "nmi",
        "description": "Card payments",
        "imageUrl": "https://img.test/logo.png",
        "createdAt": WHEN,
        "updatedAt": WHEN,
    }
