"""Shared pieces of the Wizehire client tests: URLs, credentials, bodies, a sleep that records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from wizesync import samples
from wizesync.wizehire.auth import ApiKeyAuth, ClientCredentialsAuth, WizehireAuth
from wizesync.wizehire.client import WizehireClient
from wizesync.wizehire.models import OrderSync, OrderSyncSubscription, RefundUpdate

BASE = "https://api.wizehire.test"
TOKEN_URL = "https://auth.wizehire.test/oauth/token"
API_KEY = "wh_live_key_" + "K3y" * 8
CLIENT_ID = "wizesync-client"
CLIENT_SECRET = "wh_cs_" + "S3cr3t" * 5
ORDER_ID = "wh_ord_1001"
REFUND_ID = "wh_ref_77"
SYNC_URL = f"{BASE}/v1/orders/{ORDER_ID}/sync"
REFUND_URL = f"{BASE}/v1/refunds/{REFUND_ID}"
ORDERS_URL = f"{BASE}/v1/orders"
KEY = "wizesync:evt_123:order-sync"


@dataclass
class Sleeps:
    """Stands in for asyncio.sleep: records the waits, waits for nothing."""

    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def client_credentials(**kwargs: Any) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(
        token_url=TOKEN_URL, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **kwargs
    )


def make_client(
    http: httpx.AsyncClient,
    *,
    auth: WizehireAuth | None = None,
    sleep: Sleeps | None = None,
    **kwargs: Any,
) -> WizehireClient:
    return WizehireClient(
        http, base_url=BASE, auth=auth or ApiKeyAuth(API_KEY), sleep=sleep or Sleeps(), **kwargs
    )


def token_answer(access_token: str, expires_in: int = 3600) -> httpx.Response:
    return httpx.Response(
        200, json={"access_token": access_token, "token_type": "Bearer", "expires_in": expires_in}
    )


def order_sync() -> OrderSync:
    return OrderSync(
        ghl_location_id="Z4Bxl8J4SaPEPLq9IQ8g",
        ghl_order_id="6650f0c0a1b2c3d4e5f60001",
        ghl_invoice_id="6650f0c0a1b2c3d4e5f60002",
        ghl_fulfillment_id=None,
        payment_status="partially_refunded",
        amount_paid=Decimal("149"),
        amount_refunded=Decimal("49.5"),
        currency="USD",
        ghl_transaction_ids=["6650f0c0a1b2c3d4e5f60003"],
        subscription=OrderSyncSubscription(
            ghl_subscription_id="sub_1",
            status="active",
            next_charge_at=datetime(2026, 12, 27, 12, 0, tzinfo=UTC),
        ),
        synced_at=datetime(2026, 11, 27, 12, 30, 5, tzinfo=UTC),
    )


# What the contract says Wizehire receives for `order_sync()`, byte for byte in meaning.
ORDER_SYNC_JSON: dict[str, Any] = {
    "ghl_location_id": "Z4Bxl8J4SaPEPLq9IQ8g",
    "ghl_order_id": "6650f0c0a1b2c3d4e5f60001",
    "ghl_invoice_id": "6650f0c0a1b2c3d4e5f60002",
    "ghl_fulfillment_id": None,
    "payment_status": "partially_refunded",
    "amount_paid": "149.00",
    "amount_refunded": "49.50",
    "currency": "USD",
    "ghl_transaction_ids": ["6650f0c0a1b2c3d4e5f60003"],
    "subscription": {
        "ghl_subscription_id": "sub_1",
        "status": "active",
        "next_charge_at": "2026-12-27T12:00:00Z",
        "canceled_at": None,
    },
    "synced_at": "2026-11-27T12:30:05Z",
}


def refund_update() -> RefundUpdate:
    return RefundUpdate(
        status="manual_action_required",
        amount=Decimal("49.00"),
        currency="USD",
        ghl_transaction_id="6650f0c0a1b2c3d4e5f60003",
    )


REFUND_JSON: dict[str, Any] = {
    "status": "manual_action_required",
    "amount": "49.00",
    "currency": "USD",
    "ghl_transaction_id": "6650f0c0a1b2c3d4e5f60003",
    "failure_reason": None,
    "processed_at": None,
}


def wizehire_order(order_id: str) -> dict[str, Any]:
    order = samples.wizehire_order(order_id)
    order["updated_at"] = "2026-11-27T12:00:00Z"  # Wizehire's own fields pass through
    return order
