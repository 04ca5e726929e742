"""Every GhlClient call: method, path, query, headers, exact body, typed answer; and the same
requests (and our sample answers) checked against the official spec when it is present."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx

from tests.support import ghl_kit as kit
from tests.support import ghl_spec
from tests.support.ghl_kit import (
    CONTACT_ID,
    INVOICE_ID,
    LOC,
    ORDER_ID,
    PRICE_ID,
    PRODUCT_ID,
    SUB_ID,
    TXN_ID,
)
from wizesync.ghl import models as m
from wizesync.ghl.client import GhlClient

ALT = {"altId": LOC, "altType": "location"}


@dataclass
class Case:
    name: str
    call: Callable[[GhlClient], Awaitable[Any]]
    method: str
    path: str
    spec: str
    template: str
    answer: Any
    check: Callable[[Any], None]
    query: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None


def _is(cls: type, **attrs: Any) -> Callable[[Any], None]:
    def check(result: Any) -> None:
        assert isinstance(result, cls), type(result)
        for name, value in attrs.items():
            assert getattr(result, name) == value, (name, getattr(result, name), value)

    return check


def _page(cls: type, count: int, total: int | None) -> Callable[[Any], None]:
    def check(result: Any) -> None:
        assert isinstance(result, m.Page)
        assert len(result.items) == count and all(isinstance(i, cls) for i in result.items)
        assert result.total == total

    return check


CASES = [
    Case(
        "list_whitelabel_providers",
        lambda c: c.list_whitelabel_providers(LOC),
        "GET",
        "/payments/integrations/provider/whitelabel",
        "payments.json",
        "/payments/integrations/provider/whitelabel",
        {"providers": [kit.whitelabel_provider()]},
        _page(m.WhitelabelProvider, 1, None),
        query={**ALT, "limit": "100", "offset": "0"},
    ),
    Case(
        "register_whitelabel_provider",
        lambda c: c.register_whitelabel_provider(
            LOC,
            m.RegisterWhitelabelProvider(
                unique_name="wizehire-nmi",
                title="Wizehire Pay",
                provider="nmi",
                description="Card payments",
                image_url="https://img.test/logo.png",
            ),
        ),
        "POST",
        "/payments/integrations/provider/whitelabel",
        "payments.json",
        "/payments/integrations/provider/whitelabel",
        kit.whitelabel_provider(),
        _is(m.WhitelabelProvider, provider="nmi", route="wizehire-nmi"),
        body={
            **ALT,
            "uniqueName": "wizehire-nmi",
            "title": "Wizehire Pay",
            "provider": "nmi",
            "description": "Card payments",
            "imageUrl": "https://img.test/logo.png",
        },
    ),
    Case(
        "list_orders",
        lambda c: c.list_orders(
            LOC,
            payment_status="paid",
            contact_id=CONTACT_ID,
            start_at=date(2024, 1, 1),
            limit=20,
            offset=40,
        ),
        "GET",
        "/payments/orders",
        "payments.json",
        "/payments/orders",
        {"data": [kit.order()], "totalCount": 41},
        _page(m.Order, 1, 41),
        query={
            **ALT,
            "paymentStatus": "paid",
            "contactId": CONTACT_ID,
            "startAt": "2024-01-01",
            "limit": "20",
            "offset": "40",
        },
    ),
    Case(
        "get_order",
        lambda c: c.get_order(LOC, ORDER_ID),
        "GET",
        f"/payments/orders/{ORDER_ID}",
        "payments.json",
        "/payments/orders/{orderId}",
        kit.order(),
        _is(m.Order, id=ORDER_ID, amount=Decimal("150.1"), payment_status="paid"),
        query=ALT,
    ),
    Case(
        "list_fulfillments",
        lambda c: c.list_fulfillments(LOC, ORDER_ID),
        "GET",
        f"/payments/orders/{ORDER_ID}/fulfillments",
        "payments.json",
        "/payments/orders/{orderId}/fulfillments",
        {"status": True, "data": [kit.fulfillment()]},
        lambda r: (isinstance(r, list) and len(r) == 1 and r[0].items[0].qty == 1) or _fail(r),
        query=ALT,
    ),
    Case(
        "create_fulfillment",
        lambda c: c.create_fulfillment(
            LOC,
            ORDER_ID,
            m.CreateFulfillment(
                trackings=[
                    m.FulfillmentTracking(tracking_number="40012345678", shipping_carrier="FedEx")
                ],
                items=[m.FulfillmentItem(price_id=PRICE_ID, qty=1)],
                notify_customer=True,
            ),
        ),
        "POST",
        f"/payments/orders/{ORDER_ID}/fulfillments",
        "payments.json",
        "/payments/orders/{orderId}/fulfillments",
        {"status": True, "data": kit.fulfillment()},
        _is(m.Fulfillment, id="655b33a82209e60b6adb87b1"),
        body={
            **ALT,
            "trackings": [{"trackingNumber": "40012345678", "shippingCarrier": "FedEx"}],
            "items": [{"priceId": PRICE_ID, "qty": 1}],
            "notifyCustomer": True,
        },
    ),
    Case(
        "record_order_payment",
        lambda c: c.record_order_payment(
            LOC,
            ORDER_ID,
            m.RecordOrderPayment(
                mode="card",
                card=m.RecordOrderPaymentCard(type="visa", last4="4242"),
                amount=Decimal("150.10"),
                notes="Paid in Wizehire",
                is_partial_payment=False,
            ),
        ),
        "POST",
        f"/payments/orders/{ORDER_ID}/record-payment",
        "payments.json",
        "/payments/orders/{orderId}/record-payment",
        {"success": True},
        lambda r: r is True or _fail(r),
        body={
            **ALT,
            "mode": "card",
            "card": {"type": "visa", "last4": "4242"},
            "notes": "Paid in Wizehire",
            "amount": 150.1,
            "isPartialPayment": False,
        },
    ),
    Case(
        "list_transactions",
        lambda c: c.list_transactions(LOC, entity_id=ORDER_ID),
        "GET",
        "/payments/transactions",
        "payments.json",
        "/payments/transactions",
        {"data": [kit.transaction()], "totalCount": 1},
        _page(m.Transaction, 1, 1),
        query={**ALT, "entityId": ORDER_ID, "limit": "100", "offset": "0"},
    ),
    Case(
        "get_transaction",
        lambda c: c.get_transaction(LOC, TXN_ID),
        "GET",
        f"/payments/transactions/{TXN_ID}",
        "payments.json",
        "/payments/transactions/{transactionId}",
        kit.transaction(),
        _is(m.Transaction, amount_refunded=Decimal("20.05"), entity_id=ORDER_ID),
        query=ALT,
    ),
    Case(
        "list_subscriptions",
        lambda c: c.list_subscriptions(LOC, entity_id=ORDER_ID),
        "GET",
        "/payments/subscriptions",
        "payments.json",
        "/payments/subscriptions",
        {"data": [kit.subscription()], "totalCount": 1},
        _page(m.Subscription, 1, 1),
        query={**ALT, "entityId": ORDER_ID, "limit": "100", "offset": "0"},
    ),
    Case(
        "get_subscription",
        lambda c: c.get_subscription(LOC, SUB_ID),
        "GET",
        f"/payments/subscriptions/{SUB_ID}",
        "payments.json",
        "/payments/subscriptions/{subscriptionId}",
        kit.subscription(),
        _is(m.Subscription, status="active", amount=Decimal("49.99")),
        query=ALT,
    ),
    Case(
        "create_invoice",
        lambda c: c.create_invoice(
            LOC,
            m.CreateInvoice(
                name="Wizehire order 1001",
                currency="usd",
                business_details=m.BusinessDetails(name="Acme"),
                items=[
                    m.InvoiceItem(
                        name="Job ad",
                        product_id=PRODUCT_ID,
                        price_id=PRICE_ID,
                        currency="USD",
                        amount=Decimal("150.10"),
                        qty=1,
                    )
                ],
                contact_details=m.InvoiceContactDetails(
                    id=CONTACT_ID, name="Ada Lovelace", email="ada@example.com"
                ),
                issue_date=date(2024, 1, 23),
                sent_to=m.SentTo(email=["ada@example.com"]),
                live_mode=True,
            ),
        ),
        "POST",
        "/invoices/",
        "invoices.json",
        "/invoices/",
        kit.invoice(),
        _is(m.Invoice, id=INVOICE_ID, total=Decimal("150.1"), invoice_number=1001),
        body={
            **ALT,
            "name": "Wizehire order 1001",
            "businessDetails": {"name": "Acme"},
            "currency": "USD",
            "items": [
                {
                    "name": "Job ad",
                    "productId": PRODUCT_ID,
                    "priceId": PRICE_ID,
                    "currency": "USD",
                    "amount": 150.1,
                    "qty": 1,
                }
            ],
            "discount": {"type": "fixed", "value": 0},
            "contactDetails": {
                "id": CONTACT_ID,
                "name": "Ada Lovelace",
                "phoneNo": "",
                "email": "ada@example.com",
            },
            "issueDate": "2024-01-23",
            "sentTo": {"email": ["ada@example.com"]},
            "liveMode": True,
        },
    ),
    Case(
        "get_invoice",
        lambda c: c.get_invoice(LOC, INVOICE_ID),
        "GET",
        f"/invoices/{INVOICE_ID}",
        "invoices.json",
        "/invoices/{invoiceId}",
        kit.invoice(),
        _is(m.Invoice, amount_due=Decimal("150.1")),
        query=ALT,
    ),
    Case(
        "record_invoice_payment",
        lambda c: c.record_invoice_payment(
            LOC,
            INVOICE_ID,
            m.RecordInvoicePayment(mode="cash", amount=Decimal("150.10"), notes="Paid in Wizehire"),
        ),
        "POST",
        f"/invoices/{INVOICE_ID}/record-payment",
        "invoices.json",
        "/invoices/{invoiceId}/record-payment",
        {"success": True, "invoice": kit.invoice(status="paid", amountPaid=150.1, amountDue=0)},
        lambda r: (r.success and r.invoice.status == "paid") or _fail(r),
        body={
            **ALT,
            "mode": "cash",
            "card": {"brand": "", "last4": ""},
            "cheque": {"number": ""},
            "notes": "Paid in Wizehire",
            "amount": 150.1,
        },
    ),
    Case(
        "void_invoice",
        lambda c: c.void_invoice(LOC, INVOICE_ID),
        "POST",
        f"/invoices/{INVOICE_ID}/void",
        "invoices.json",
        "/invoices/{invoiceId}/void",
        kit.invoice(status="void"),
        _is(m.Invoice, status="void"),
        body=ALT,
    ),
    Case(
        "list_invoices",
        lambda c: c.list_invoices(LOC, status="paid", contact_id=CONTACT_ID),
        "GET",
        "/invoices/",
        "invoices.json",
        "/invoices/",
        {"invoices": [kit.invoice()], "total": 1},
        _page(m.Invoice, 1, 1),
        query={**ALT, "status": "paid", "contactId": CONTACT_ID, "limit": "100", "offset": "0"},
    ),
    Case(
        "upsert_contact",
        lambda c: c.upsert_contact(
            LOC,
            m.UpsertContact(
                email="ada@example.com",
                first_name="Ada",
                last_name="Lovelace",
                tags=["wizehire"],
                source="wizehire",
            ),
        ),
        "POST",
        "/contacts/upsert",
        "contacts.json",
        "/contacts/upsert",
        {"new": True, "contact": kit.contact(), "traceId": "0f6c"},
        lambda r: (r.new and r.contact.id == CONTACT_ID) or _fail(r),
        body={
            "locationId": LOC,
            "firstName": "Ada",
            "lastName": "Lovelace",
            "email": "ada@example.com",
            "tags": ["wizehire"],
            "source": "wizehire",
        },
    ),
    Case(
        "search_contacts",
        lambda c: c.search_contacts(LOC, m.SearchContacts(query="ada@example.com", page_limit=1)),
        "POST",
        "/contacts/search",
        "contacts.json",
        "/contacts/search",
        {"contacts": [kit.contact()], "total": 1},
        lambda r: (r.total == 1 and r.contacts[0].email == "ada@example.com") or _fail(r),
        body={"locationId": LOC, "query": "ada@example.com", "pageLimit": 1},
    ),
    Case(
        "find_contact_by_email",
        lambda c: c.find_contact_by_email(LOC, "ada+1@example.com"),
        "GET",
        "/contacts/search/duplicate",
        "contacts.json",
        "/contacts/search/duplicate",
        {"contact": kit.contact()},
        _is(m.Contact, id=CONTACT_ID),
        query={"locationId": LOC, "email": "ada+1@example.com"},
    ),
    Case(
        "get_product",
        lambda c: c.get_product(LOC, PRODUCT_ID),
        "GET",
        f"/products/{PRODUCT_ID}",
        "products.json",
        "/products/{productId}",
        kit.product(),
        _is(m.Product, product_type="SERVICE"),
        query={"locationId": LOC},
    ),
    Case(
        "list_products",
        lambda c: c.list_products(LOC),
        "GET",
        "/products/",
        "products.json",
        "/products/",
        {"products": [kit.product()], "total": [{"total": 1}]},
        _page(m.Product, 1, 1),
        query={"locationId": LOC, "limit": "100", "offset": "0"},
    ),
    Case(
        "list_prices",
        lambda c: c.list_prices(LOC, PRODUCT_ID),
        "GET",
        f"/products/{PRODUCT_ID}/price",
        "products.json",
        "/products/{productId}/price",
        {"prices": [kit.price()], "total": 1},
        _page(m.Price, 1, 1),
        query={"locationId": LOC, "limit": "100", "offset": "0"},
    ),
    Case(
        "get_price",
        lambda c: c.get_price(LOC, PRODUCT_ID, PRICE_ID),
        "GET",
        f"/products/{PRODUCT_ID}/price/{PRICE_ID}",
        "products.json",
        "/products/{productId}/price/{priceId}",
        kit.price(),
        _is(m.Price, amount=Decimal("150.1"), currency="USD"),
        query={"locationId": LOC},
    ),
]


def _fail(result: Any) -> None:
    raise AssertionError(f"unexpected result: {result!r}")


async def _run(case: Case) -> tuple[httpx.Request, Any]:
    with respx.mock(assert_all_called=True) as mock:
        route = mock.request(case.method, kit.BASE + case.path).respond(200, json=case.answer)
        async with httpx.AsyncClient() as http:
            result = await case.call(kit.make_client(http))
    assert route.call_count == 1
    return route.calls.last.request, result


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_each_call_sends_the_documented_request(case: Case) -> None:
    request, result = await _run(case)

    assert request.method == case.method
    assert request.url.path == case.path
    assert dict(request.url.params) == case.query
    assert request.headers["Version"] == "2021-07-28"
    assert request.headers["Authorization"] == "Bearer tok-1-secret-value"
    assert request.headers["Accept"] == "application/json"
    if case.body is None:
        assert request.content == b""
    else:
        assert json.loads(request.content) == case.body
    case.check(result)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_each_call_matches_the_official_spec(case: Case) -> None:
    ghl_spec.require_spec_dir()
    request, _ = await _run(case)

    ghl_spec.validate_query(case.spec, case.method, case.template, dict(request.url.params))
    for name, allowed in ghl_spec.required_header_values(
        case.spec, case.method, case.template
    ).items():
        assert name in request.headers, f"missing required header {name}"
        assert not allowed or request.headers[name] in allowed
    if case.method == "POST":
        ghl_spec.validate_request_body(
            case.spec, case.method, case.template, json.loads(request.content)
        )
    # Our sample answers must look like GHL's, or the typed-answer checks above prove little.
    ghl_spec.validate_response(case.spec, case.method, case.template, 200, case.answer)


def test_every_public_call_has_a_case() -> None:
    public = {
        name
        for name in vars(GhlClient)
        if not name.startswith("_") and not name.startswith("iter_")
    }
    assert public == {c.name for c in CASES}
