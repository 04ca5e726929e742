"""The sandbox answers like the official spec says GHL answers (checked with
tests/support/ghl_spec.py; skipped where the spec files are absent), and accepts request bodies
that the spec calls valid. Its webhooks fit the docs' webhook schemas."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from jsonschema import ValidationError, validators

from tests.sandbox.kit import (
    LOC,
    PIT,
    Q,
    bearer,
    checkout,
    create_invoice,
    pay_invoice,
    upsert_contact,
)
from tests.support import ghl_spec
from wizesync_sandbox.core import Sandbox
from wizesync_sandbox.defaults import (
    BOOST_PRICE_ID,
    BOOST_PRODUCT_ID,
    DEFAULT_COMPANY_ID,
    PLAN_PRICE_ID,
)

pytestmark = pytest.mark.usefixtures("spec")


@pytest.fixture
def spec() -> None:
    ghl_spec.require_spec_dir()


class Checker:
    """Validates each answer against its documented schema; collects every mismatch."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.checked: list[str] = []

    def __call__(
        self,
        spec_file: str,
        method: str,
        template: str,
        response: httpx.Response,
        *,
        schema_expected: bool = True,
    ) -> Any:
        body = response.json()
        label = f"{method.upper()} {template} -> {response.status_code}"
        try:
            checked = ghl_spec.validate_response(
                spec_file, method, template, response.status_code, body
            )
        except ValidationError as exc:
            self.problems.append(f"{label}: {exc.message} at {list(exc.absolute_path)}")
            return body
        if checked:
            self.checked.append(label)
        elif schema_expected:
            self.problems.append(f"{label}: the spec documents no schema to check")
        return body


def _request(spec_file: str, method: str, template: str, body: dict[str, Any]) -> dict:
    """A request body the spec accepts (strictly), so the sandbox is tested on real shapes."""
    ghl_spec.validate_request_body(spec_file, method, template, body)
    return body


async def test_every_answer_fits_the_official_spec(client):
    check = Checker()
    # OAuth: install, rotate, agency -> location token, a refused refresh.
    code = (await client.post("/_sandbox/ghl/oauth/codes", json={"location_id": LOC})).json()
    form = {"client_id": "c", "client_secret": "s"}
    pair = check(
        "oauth.json",
        "post",
        "/oauth/token",
        await client.post(
            "/ghl/oauth/token",
            data={
                **form,
                "grant_type": "authorization_code",
                "code": code["code"],
                "user_type": "Location",
            },
        ),
    )
    check(
        "oauth.json",
        "post",
        "/oauth/token",
        await client.post(
            "/ghl/oauth/token",
            data={**form, "grant_type": "refresh_token", "refresh_token": pair["refresh_token"]},
        ),
    )
    check(
        "oauth.json",
        "post",
        "/oauth/token",
        await client.post(
            "/ghl/oauth/token",
            data={**form, "grant_type": "refresh_token", "refresh_token": pair["refresh_token"]},
        ),
    )
    agency_code = (
        await client.post(
            "/_sandbox/ghl/oauth/codes",
            json={"user_type": "Company", "company_id": DEFAULT_COMPANY_ID},
        )
    ).json()["code"]
    agency = (
        await client.post(
            "/ghl/oauth/token",
            data={
                **form,
                "grant_type": "authorization_code",
                "code": agency_code,
                "user_type": "Company",
            },
        )
    ).json()
    check(
        "oauth.json",
        "post",
        "/oauth/locationToken",
        await client.post(
            "/ghl/oauth/locationToken",
            headers=bearer(agency["access_token"]),
            data={"companyId": DEFAULT_COMPANY_ID, "locationId": LOC},
        ),
    )

    # Contacts and catalogue.
    contact = check(
        "contacts.json",
        "post",
        "/contacts/upsert",
        await client.post(
            "/ghl/contacts/upsert",
            headers=PIT,
            json=_request(
                "contacts.json",
                "post",
                "/contacts/upsert",
                {
                    "locationId": LOC,
                    "email": "pat@example.com",
                    "firstName": "Pat",
                    "lastName": "Lee",
                    "phone": "+15555550100",
                    "companyName": "Lee Plumbing",
                },
            ),
        ),
    )["contact"]
    check(
        "contacts.json",
        "get",
        "/contacts/{contactId}",
        await client.get(f"/ghl/contacts/{contact['id']}", headers=PIT),
    )
    check(
        "contacts.json",
        "post",
        "/contacts/search",
        await client.post(
            "/ghl/contacts/search", headers=PIT, json={"locationId": LOC, "query": "pat"}
        ),
        schema_expected=False,
    )
    check(
        "contacts.json",
        "get",
        "/contacts/",
        await client.get("/ghl/contacts/", headers=PIT, params={"locationId": LOC}),
    )
    check(
        "products.json",
        "get",
        "/products/",
        await client.get("/ghl/products/", headers=PIT, params={"locationId": LOC}),
    )
    check(
        "products.json",
        "get",
        "/products/{productId}",
        await client.get(
            f"/ghl/products/{BOOST_PRODUCT_ID}", headers=PIT, params={"locationId": LOC}
        ),
    )
    check(
        "products.json",
        "get",
        "/products/{productId}/price",
        await client.get(
            f"/ghl/products/{BOOST_PRODUCT_ID}/price", headers=PIT, params={"locationId": LOC}
        ),
    )
    check(
        "products.json",
        "get",
        "/products/{productId}/price/{priceId}",
        await client.get(
            f"/ghl/products/{BOOST_PRODUCT_ID}/price/{BOOST_PRICE_ID}",
            headers=PIT,
            params={"locationId": LOC},
        ),
    )

    # Invoices: create (and a refused one), get, list, pay, void.
    invoice_req = _request(
        "invoices.json",
        "post",
        "/invoices/",
        {
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
                    "amount": 149,
                    "qty": 1,
                }
            ],
            "discount": {"type": "fixed", "value": 0},
            "contactDetails": {
                "id": contact["id"],
                "name": "Pat Lee",
                "phoneNo": "+15555550100",
                "email": "pat@example.com",
            },
            "issueDate": "2026-11-27",
            "sentTo": {"email": ["pat@example.com"]},
            "liveMode": False,
        },
    )
    invoice = check(
        "invoices.json",
        "post",
        "/invoices/",
        await client.post("/ghl/invoices/", headers=PIT, json=invoice_req),
    )
    to_void = check(
        "invoices.json",
        "post",
        "/invoices/",
        await client.post("/ghl/invoices/", headers=PIT, json=invoice_req),
    )
    check(
        "invoices.json",
        "post",
        "/invoices/",
        await client.post(
            "/ghl/invoices/", headers=PIT, json={"altId": LOC, "altType": "location"}
        ),
    )
    check(
        "invoices.json",
        "get",
        "/invoices/{invoiceId}",
        await client.get(f"/ghl/invoices/{invoice['_id']}", headers=PIT, params=Q),
    )
    check(
        "invoices.json",
        "post",
        "/invoices/{invoiceId}/record-payment",
        await client.post(
            f"/ghl/invoices/{invoice['_id']}/record-payment",
            headers=PIT,
            json=_request(
                "invoices.json",
                "post",
                "/invoices/{invoiceId}/record-payment",
                {
                    "altId": LOC,
                    "altType": "location",
                    "mode": "card",
                    "card": {"brand": "visa", "last4": "4242"},
                    "cheque": {"number": "0"},
                    "notes": "paid in Wizehire",
                    "amount": 149,
                },
            ),
        ),
    )
    check(
        "invoices.json",
        "post",
        "/invoices/{invoiceId}/void",
        await client.post(
            f"/ghl/invoices/{to_void['_id']}/void",
            headers=PIT,
            json=_request(
                "invoices.json",
                "post",
                "/invoices/{invoiceId}/void",
                {"altId": LOC, "altType": "location"},
            ),
        ),
    )
    check(
        "invoices.json",
        "get",
        "/invoices/",
        await client.get("/ghl/invoices/", headers=PIT, params={**Q, "limit": "10", "offset": "0"}),
    )

    # Payments: orders (from the invoice, a checkout, a subscription), fulfillments,
    # record-payment, transactions, subscriptions, white-label providers.
    bought = await checkout(client, outcome="pending")
    plan = await checkout(client, price_id=PLAN_PRICE_ID)
    await client.post(
        "/_sandbox/ghl/refunds", json={"order_id": plan["order"]["_id"], "amount": "10"}
    )
    orders = check(
        "payments.json",
        "get",
        "/payments/orders",
        await client.get("/ghl/payments/orders", headers=PIT, params=Q),
    )
    for order in orders["data"]:
        check(
            "payments.json",
            "get",
            "/payments/orders/{orderId}",
            await client.get(
                f"/ghl/payments/orders/{order['_id']}", headers=PIT, params={"altId": LOC}
            ),
        )
    order_id = bought["order"]["_id"]
    check(
        "payments.json",
        "post",
        "/payments/orders/{orderId}/record-payment",
        await client.post(
            f"/ghl/payments/orders/{order_id}/record-payment",
            headers=PIT,
            json=_request(
                "payments.json",
                "post",
                "/payments/orders/{orderId}/record-payment",
                {"altId": LOC, "altType": "location", "mode": "cash", "amount": 149},
            ),
        ),
    )
    check(
        "payments.json",
        "post",
        "/payments/orders/{orderId}/fulfillments",
        await client.post(
            f"/ghl/payments/orders/{order_id}/fulfillments",
            headers=PIT,
            json=_request(
                "payments.json",
                "post",
                "/payments/orders/{orderId}/fulfillments",
                {
                    "altId": LOC,
                    "altType": "location",
                    "notifyCustomer": False,
                    "trackings": [
                        {
                            "trackingNumber": "WH-1",
                            "shippingCarrier": "Wizehire",
                            "trackingUrl": "https://app.wizehire.com/orders/wh_1",
                        }
                    ],
                    "items": [{"priceId": BOOST_PRICE_ID, "qty": 1}],
                },
            ),
        ),
    )
    check(
        "payments.json",
        "get",
        "/payments/orders/{orderId}/fulfillments",
        await client.get(f"/ghl/payments/orders/{order_id}/fulfillments", headers=PIT, params=Q),
    )
    txns = check(
        "payments.json",
        "get",
        "/payments/transactions",
        await client.get("/ghl/payments/transactions", headers=PIT, params=Q),
    )
    assert len(txns["data"]) >= 3
    for txn in txns["data"]:
        check(
            "payments.json",
            "get",
            "/payments/transactions/{transactionId}",
            await client.get(f"/ghl/payments/transactions/{txn['_id']}", headers=PIT, params=Q),
        )
    await client.post(f"/_sandbox/ghl/subscriptions/{plan['subscription']['_id']}/cancel")
    subs = check(
        "payments.json",
        "get",
        "/payments/subscriptions",
        await client.get("/ghl/payments/subscriptions", headers=PIT, params=Q),
    )
    check(
        "payments.json",
        "get",
        "/payments/subscriptions/{subscriptionId}",
        await client.get(
            f"/ghl/payments/subscriptions/{subs['data'][0]['_id']}", headers=PIT, params=Q
        ),
    )
    check(
        "payments.json",
        "post",
        "/payments/integrations/provider/whitelabel",
        await client.post(
            "/ghl/payments/integrations/provider/whitelabel",
            headers=PIT,
            json=_request(
                "payments.json",
                "post",
                "/payments/integrations/provider/whitelabel",
                {
                    "altId": LOC,
                    "altType": "location",
                    "uniqueName": "wizehire-nmi",
                    "title": "Wizehire",
                    "provider": "nmi",
                    "description": "NMI",
                    "imageUrl": "https://example.com/logo.png",
                },
            ),
        ),
    )
    check(
        "payments.json",
        "get",
        "/payments/integrations/provider/whitelabel",
        await client.get("/ghl/payments/integrations/provider/whitelabel", headers=PIT, params=Q),
    )

    # Errors in the documented shapes.
    check(
        "payments.json",
        "get",
        "/payments/orders",
        await client.get("/ghl/payments/orders", headers=bearer("sbx_at_unknown"), params=Q),
    )
    check(
        "payments.json",
        "get",
        "/payments/transactions",
        await client.get("/ghl/payments/transactions", headers=PIT, params={"altId": LOC}),
    )

    assert check.problems == [], "\n".join(check.problems)
    assert len(check.checked) >= 30


@pytest.mark.parametrize(
    "event",
    [
        "OrderCreate",
        "OrderStatusUpdate",
        "InvoiceCreate",
        "InvoicePaid",
        "InvoicePartiallyPaid",
        "InvoiceVoid",
    ],
)
async def test_webhooks_fit_the_docs_webhook_schemas(client, sandbox: Sandbox, event: str):
    folder = ghl_spec.require_spec_dir()
    contact = await upsert_contact(client)
    partly = await create_invoice(client, contact, amount=100.0)
    await pay_invoice(client, partly["_id"], amount=40)
    await pay_invoice(client, partly["_id"])
    voided = await create_invoice(client, contact)
    await client.post(
        f"/ghl/invoices/{voided['_id']}/void",
        headers=PIT,
        json={"altId": LOC, "altType": "location"},
    )
    sent = sandbox.outbox.listing(type_=event)
    assert sent, f"no {event} webhook was made"
    schema = json.loads((folder / "webhooks" / f"{event}.json").read_text())["schema"]
    validator_cls = validators.validator_for(schema, default=validators.Draft7Validator)
    for delivery in sent:
        validator_cls(schema).validate(delivery.payload)
        assert delivery.payload["type"] == event
