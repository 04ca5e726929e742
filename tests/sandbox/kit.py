"""Helpers for the sandbox tests: a sandbox app driven in-process, and request bodies shaped the
way the official spec asks for them."""

from __future__ import annotations

from typing import Any

import httpx

from wizesync_sandbox.defaults import BOOST_PRICE_ID, BOOST_PRODUCT_ID, DEFAULT_LOCATION_ID

LOC = DEFAULT_LOCATION_ID
VERSION = "2021-07-28"
PIT = {"Authorization": "Bearer any-private-integration-token", "Version": VERSION}
Q = {"altId": LOC, "altType": "location"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Version": VERSION}


async def upsert_contact(
    client: httpx.AsyncClient, email: str = "pat@example.com", headers: dict[str, str] = PIT
) -> dict[str, Any]:
    r = await client.post(
        "/ghl/contacts/upsert",
        headers=headers,
        json={
            "locationId": LOC,
            "email": email,
            "firstName": "Pat",
            "lastName": "Lee",
            "phone": "+15555550100",
            "companyName": "Lee Plumbing",
        },
    )
    assert r.status_code == 200, r.text
    return r.json()["contact"]


def invoice_body(contact: dict[str, Any], amount: float = 149.0, qty: int = 1) -> dict[str, Any]:
    return {
        "altId": LOC,
        "altType": "location",
        "name": "Wizehire order wh_ord_1001",
        "businessDetails": {"name": "Wizehire"},
        "currency": "USD",
        "items": [
            {
                "name": "Job ad boost, 30 days",
                "productId": BOOST_PRODUCT_ID,
                "priceId": BOOST_PRICE_ID,
                "currency": "USD",
                "amount": amount,
                "qty": qty,
            }
        ],
        "discount": {"type": "fixed", "value": 0},
        "contactDetails": {
            "id": contact["id"],
            "name": contact["name"],
            "phoneNo": contact["phone"],
            "email": contact["email"],
        },
        "issueDate": "2026-11-27",
        "sentTo": {"email": [contact["email"]]},
        "liveMode": False,
    }


async def create_invoice(
    client: httpx.AsyncClient, contact: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    r = await client.post("/ghl/invoices/", headers=PIT, json=invoice_body(contact, **kwargs))
    assert r.status_code == 200, r.text
    return r.json()


async def pay_invoice(
    client: httpx.AsyncClient, invoice_id: str, amount: float | None = None
) -> httpx.Response:
    body: dict[str, Any] = {
        "altId": LOC,
        "altType": "location",
        "mode": "cash",
        "notes": "paid in Wizehire",
    }
    if amount is not None:
        body["amount"] = amount
    return await client.post(f"/ghl/invoices/{invoice_id}/record-payment", headers=PIT, json=body)


async def checkout(
    client: httpx.AsyncClient,
    *,
    price_id: str = BOOST_PRICE_ID,
    outcome: str = "paid",
    email: str = "buyer@example.com",
) -> dict[str, Any]:
    r = await client.post(
        "/_sandbox/ghl/checkout",
        json={
            "location_id": LOC,
            "items": [{"price_id": price_id, "qty": 1}],
            "outcome": outcome,
            "contact": {"email": email, "firstName": "Bo"},
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


async def order_transactions(client: httpx.AsyncClient, order_id: str) -> list[dict[str, Any]]:
    r = await client.get(
        "/ghl/payments/transactions", headers=PIT, params={**Q, "entityId": order_id}
    )
    assert r.status_code == 200, r.text
    return r.json()["data"]
