"""The fake GHL's payments behaviour: invoices make orders, transactions follow payments and
refunds, checkouts and subscriptions, fulfillments, filters."""

from __future__ import annotations

import re

from tests.sandbox.kit import (
    LOC,
    PIT,
    Q,
    checkout,
    create_invoice,
    order_transactions,
    pay_invoice,
    upsert_contact,
)
from wizesync_sandbox.core import Sandbox
from wizesync_sandbox.defaults import BOOST_PRICE_ID, PLAN_PRICE_ID

HEX24 = re.compile(r"^[0-9a-f]{24}$")


async def _orders(client, **params):
    r = await client.get("/ghl/payments/orders", headers=PIT, params={**Q, **params})
    assert r.status_code == 200, r.text
    return r.json()


async def test_paid_invoice_produces_an_invoice_order_and_a_succeeded_transaction(client):
    contact = await upsert_contact(client)
    invoice = await create_invoice(client, contact)
    assert HEX24.match(invoice["_id"])
    assert (await _orders(client))["totalCount"] == 0  # no order before payment

    paid = await pay_invoice(client, invoice["_id"])
    assert paid.status_code == 200, paid.text
    assert paid.json()["invoice"]["status"] == "paid"
    assert paid.json()["invoice"]["amountDue"] == 0

    listed = (await _orders(client, sourceId=invoice["_id"]))["data"]
    assert len(listed) == 1
    order = (
        await client.get(
            f"/ghl/payments/orders/{listed[0]['_id']}", headers=PIT, params={"altId": LOC}
        )
    ).json()
    assert HEX24.match(order["_id"])
    assert order["source"]["type"] == "invoice"
    assert order["source"]["id"] == invoice["_id"]
    assert order["status"] == "completed"
    assert order["paymentStatus"] == "paid"
    assert order["amount"] == 149
    assert order["contactId"] == contact["id"]
    assert order["items"][0]["price"]["_id"] == BOOST_PRICE_ID

    txns = await order_transactions(client, order["_id"])
    assert len(txns) == 1
    txn = (
        await client.get(f"/ghl/payments/transactions/{txns[0]['_id']}", headers=PIT, params=Q)
    ).json()
    assert txn["status"] == "succeeded"
    assert txn["entityType"] == "order"
    assert txn["entityId"] == order["_id"]
    assert txn["entitySource"] == {"type": "invoice", "id": invoice["_id"], "name": invoice["name"]}
    assert txn["invoiceId"] == invoice["_id"]
    assert txn["amount"] == 149
    assert txn["amountRefunded"] == 0
    assert txn["currency"] == "USD"
    by_invoice = await order_transactions(client, invoice["_id"])
    assert [t["_id"] for t in by_invoice] == [txn["_id"]]


async def test_partial_payments_make_the_order_only_when_nothing_is_due(client):
    contact = await upsert_contact(client)
    invoice = await create_invoice(client, contact, amount=100.0)
    first = await pay_invoice(client, invoice["_id"], amount=40)
    assert first.json()["invoice"]["status"] == "partially_paid"
    assert first.json()["invoice"]["amountDue"] == 60
    assert (await _orders(client))["totalCount"] == 0

    too_much = await pay_invoice(client, invoice["_id"], amount=61)
    assert too_much.status_code == 400

    await pay_invoice(client, invoice["_id"], amount=60)
    order = (await _orders(client))["data"][0]
    txns = await order_transactions(client, order["_id"])
    # Both payments belong to the order once it exists, and add up to its amount.
    assert sorted(t["amount"] for t in txns) == [40, 60]
    assert order["paymentStatus"] == "paid"


async def test_void_only_an_unpaid_invoice(client):
    contact = await upsert_contact(client)
    unpaid = await create_invoice(client, contact)
    paid = await create_invoice(client, contact)
    await pay_invoice(client, paid["_id"])
    body = {"altId": LOC, "altType": "location"}

    voided = await client.post(f"/ghl/invoices/{unpaid['_id']}/void", headers=PIT, json=body)
    refused = await client.post(f"/ghl/invoices/{paid['_id']}/void", headers=PIT, json=body)
    assert voided.status_code == 200
    assert voided.json()["status"] == "void"
    assert refused.status_code == 400
    late_payment = await pay_invoice(client, unpaid["_id"])
    assert late_payment.status_code == 400


async def test_invoice_create_with_missing_fields_is_422_with_ghls_messages(client):
    r = await client.post("/ghl/invoices/", headers=PIT, json={"altId": LOC, "altType": "location"})
    assert r.status_code == 422
    body = r.json()
    assert body["statusCode"] == 422
    assert "items should not be empty" in body["message"]
    assert isinstance(body["message"], list)


async def test_refund_simulation_raises_amount_refunded_and_order_payment_status(client):
    contact = await upsert_contact(client)
    invoice = await create_invoice(client, contact)
    await pay_invoice(client, invoice["_id"])
    order = (await _orders(client))["data"][0]
    txn = (await order_transactions(client, order["_id"]))[0]

    r = await client.post(
        "/_sandbox/ghl/refunds", json={"transaction_id": txn["_id"], "amount": "49.00"}
    )
    assert r.status_code == 200, r.text
    txn_now = (
        await client.get(f"/ghl/payments/transactions/{txn['_id']}", headers=PIT, params=Q)
    ).json()
    assert txn_now["amountRefunded"] == 49
    assert txn_now["status"] == "succeeded"
    order_now = (
        await client.get(f"/ghl/payments/orders/{order['_id']}", headers=PIT, params={"altId": LOC})
    ).json()
    assert order_now["paymentStatus"] == "partially_paid"

    too_much = await client.post(
        "/_sandbox/ghl/refunds", json={"transaction_id": txn["_id"], "amount": "100.01"}
    )
    assert too_much.status_code == 400
    rest = await client.post("/_sandbox/ghl/refunds", json={"order_id": order["_id"]})
    assert rest.json()["transaction"]["amountRefunded"] == 149
    assert rest.json()["order"]["paymentStatus"] == "refunded"


async def test_refund_sends_no_webhook_because_ghl_has_none(client, sandbox: Sandbox):
    bought = await checkout(client)
    before = len(sandbox.outbox.deliveries)
    await client.post("/_sandbox/ghl/refunds", json={"order_id": bought["order"]["_id"]})
    assert len(sandbox.outbox.deliveries) == before


async def test_checkout_paid_failed_and_pending(client, sandbox: Sandbox):
    paid = await checkout(client, outcome="paid")
    failed = await checkout(client, outcome="failed")
    pending = await checkout(client, outcome="pending")
    assert paid["order"]["paymentStatus"] == "paid"
    assert paid["transaction"]["status"] == "succeeded"
    assert failed["order"]["paymentStatus"] == "unpaid"
    assert failed["transaction"]["status"] == "failed"
    assert pending["transaction"] is None
    assert (await _orders(client, paymentStatus="paid"))["totalCount"] == 1
    assert (await _orders(client, status="pending"))["totalCount"] == 2
    types = [d.type for d in sandbox.outbox.deliveries.values()]
    assert types.count("OrderCreate") == 3
    assert types.count("OrderStatusUpdate") == 1  # only the paid one completed


async def test_failed_payment_on_an_existing_order_adds_a_failed_transaction(client):
    bought = await checkout(client, outcome="pending")
    r = await client.post(
        f"/_sandbox/ghl/orders/{bought['order']['_id']}/fail-payment",
        json={"reason": "insufficient_funds"},
    )
    assert r.status_code == 201, r.text
    txns = await order_transactions(client, bought["order"]["_id"])
    assert [t["status"] for t in txns] == ["failed"]


async def test_record_payment_on_a_pending_order_completes_it(client, sandbox: Sandbox):
    bought = await checkout(client, outcome="pending")
    order_id = bought["order"]["_id"]
    r = await client.post(
        f"/ghl/payments/orders/{order_id}/record-payment",
        headers=PIT,
        json={"altId": LOC, "altType": "location", "mode": "cash"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True}
    order = (
        await client.get(f"/ghl/payments/orders/{order_id}", headers=PIT, params={"altId": LOC})
    ).json()
    assert order["status"] == "completed"
    assert order["paymentStatus"] == "paid"
    assert [d.type for d in sandbox.outbox.deliveries.values()][-1] == "OrderStatusUpdate"
    again = await client.post(
        f"/ghl/payments/orders/{order_id}/record-payment",
        headers=PIT,
        json={"altId": LOC, "altType": "location", "mode": "cash"},
    )
    assert again.status_code == 400


async def test_subscription_checkout_renewal_failure_and_cancellation(client):
    bought = await checkout(client, price_id=PLAN_PRICE_ID)
    sub = bought["subscription"]
    assert sub["status"] == "active"
    assert bought["transaction"]["subscriptionId"] == sub["_id"]
    first_charge = sub["schedule"]["executeAt"]

    renewed = await client.post(f"/_sandbox/ghl/subscriptions/{sub['_id']}/renew", json={})
    assert renewed.status_code == 201
    assert renewed.json()["subscription"]["schedule"]["executeAt"] > first_charge
    failed = await client.post(
        f"/_sandbox/ghl/subscriptions/{sub['_id']}/renew", json={"outcome": "failed"}
    )
    assert failed.json()["subscription"]["status"] == "past_due"
    cancelled = await client.post(f"/_sandbox/ghl/subscriptions/{sub['_id']}/cancel")
    assert cancelled.json()["status"] == "canceled"

    listed = (
        await client.get(
            "/ghl/payments/subscriptions",
            headers=PIT,
            params={**Q, "entityId": bought["order"]["_id"]},
        )
    ).json()
    assert [s["status"] for s in listed["data"]] == ["canceled"]
    detail = (
        await client.get(f"/ghl/payments/subscriptions/{sub['_id']}", headers=PIT, params=Q)
    ).json()
    assert detail["canceledAt"]
    txns = (
        await client.get(
            "/ghl/payments/transactions", headers=PIT, params={**Q, "subscriptionId": sub["_id"]}
        )
    ).json()["data"]
    assert sorted(t["status"] for t in txns) == ["failed", "succeeded", "succeeded"]
    by_provider_id = (
        await client.get(
            "/ghl/payments/transactions",
            headers=PIT,
            params={**Q, "subscriptionId": sub["subscriptionId"]},
        )
    ).json()
    assert by_provider_id["totalCount"] == 3


async def test_fulfillment_create_list_and_over_fulfilment_refused(client):
    bought = await checkout(client)
    order_id = bought["order"]["_id"]
    body = {
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
    }
    created = await client.post(
        f"/ghl/payments/orders/{order_id}/fulfillments", headers=PIT, json=body
    )
    assert created.status_code == 200, created.text
    assert created.json()["status"] is True
    assert created.json()["data"]["items"][0]["price"]["_id"] == BOOST_PRICE_ID

    again = await client.post(
        f"/ghl/payments/orders/{order_id}/fulfillments", headers=PIT, json=body
    )
    assert again.status_code == 400
    listed = await client.get(
        f"/ghl/payments/orders/{order_id}/fulfillments", headers=PIT, params=Q
    )
    assert len(listed.json()["data"]) == 1
    order = (
        await client.get(f"/ghl/payments/orders/{order_id}", headers=PIT, params={"altId": LOC})
    ).json()
    assert order["fulfillmentStatus"] == "fulfilled"


async def test_order_filters_by_contact_and_time_window(client, sandbox: Sandbox):
    old = await checkout(client, email="old@example.com")
    sandbox.clock.advance(3 * 86_400)
    new = await checkout(client, email="new@example.com")
    by_contact = await _orders(client, contactId=new["order"]["contactId"])
    assert [o["_id"] for o in by_contact["data"]] == [new["order"]["_id"]]
    window = await _orders(
        client, startAt=old["order"]["createdAt"][:10], endAt=old["order"]["createdAt"][:10]
    )
    assert [o["_id"] for o in window["data"]] == [old["order"]["_id"]]
    both = await _orders(client)
    assert [o["_id"] for o in both["data"]] == [new["order"]["_id"], old["order"]["_id"]]
    page = await _orders(client, limit=1, offset=1)
    assert [o["_id"] for o in page["data"]] == [old["order"]["_id"]]
    assert page["totalCount"] == 2
    txns = await client.get(
        "/ghl/payments/transactions",
        headers=PIT,
        params={**Q, "startAt": new["order"]["createdAt"]},
    )
    assert [t["entityId"] for t in txns.json()["data"]] == [new["order"]["_id"]]


async def test_other_locations_objects_are_not_found(client):
    other = (await client.post("/_sandbox/ghl/locations", json={})).json()["id"]
    bought = await checkout(client)
    r = await client.get(
        f"/ghl/payments/orders/{bought['order']['_id']}", headers=PIT, params={"altId": other}
    )
    assert r.status_code == 404
    assert r.json()["status"] == 404 and r.json()["traceId"]


async def test_contact_upsert_matches_by_email_and_search_finds_it(client):
    first = await upsert_contact(client, email="Sam@Example.com")
    second = await client.post(
        "/ghl/contacts/upsert",
        headers=PIT,
        json={"locationId": LOC, "email": "sam@example.com", "companyName": "Sam Co"},
    )
    assert second.json()["new"] is False
    assert second.json()["contact"]["id"] == first["id"]
    found = await client.post(
        "/ghl/contacts/search",
        headers=PIT,
        json={
            "locationId": LOC,
            "pageLimit": 10,
            "filters": [{"field": "email", "operator": "eq", "value": "SAM@example.com"}],
        },
    )
    assert [c["id"] for c in found.json()["contacts"]] == [first["id"]]
    dup = await client.get(
        "/ghl/contacts/search/duplicate",
        headers=PIT,
        params={"locationId": LOC, "email": "sam@example.com"},
    )
    assert dup.json()["contact"]["companyName"] == "Sam Co"


async def test_whitelabel_provider_register_and_list(client):
    body = {
        "altId": LOC,
        "altType": "location",
        "uniqueName": "wizehire-nmi",
        "title": "Wizehire payments",
        "provider": "nmi",
        "description": "NMI gateway",
        "imageUrl": "https://example.com/logo.png",
    }
    created = await client.post(
        "/ghl/payments/integrations/provider/whitelabel", headers=PIT, json=body
    )
    assert created.status_code == 200, created.text
    duplicate = await client.post(
        "/ghl/payments/integrations/provider/whitelabel", headers=PIT, json=body
    )
    bad = await client.post(
        "/ghl/payments/integrations/provider/whitelabel",
        headers=PIT,
        json={**body, "uniqueName": "Bad_Name", "provider": "stripe"},
    )
    listed = await client.get(
        "/ghl/payments/integrations/provider/whitelabel", headers=PIT, params=Q
    )
    assert duplicate.status_code == 400
    assert bad.status_code == 422
    assert [p["route"] for p in listed.json()["providers"]] == ["wizehire-nmi"]


async def test_version_header_is_required(client):
    r = await client.get(
        "/ghl/payments/orders", params=Q, headers={"Authorization": PIT["Authorization"]}
    )
    assert r.status_code == 400
    assert "Version" in r.json()["message"]


async def test_pit_mode_with_a_private_token_accepts_only_that_token(client):
    await client.patch(f"/_sandbox/ghl/locations/{LOC}", json={"private_token": "pit-right"})
    ok = await client.get(
        "/ghl/payments/orders", params=Q, headers={**PIT, "Authorization": "Bearer pit-right"}
    )
    wrong = await client.get("/ghl/payments/orders", params=Q, headers=PIT)
    assert ok.status_code == 200
    assert wrong.status_code == 401


async def test_paused_location_answers_location_is_not_active(client):
    await client.patch(f"/_sandbox/ghl/locations/{LOC}", json={"active": False})
    r = await client.get("/ghl/payments/orders", params=Q, headers=PIT)
    assert r.status_code == 400
    assert r.json()["message"] == "Location is not active"


async def test_reset_forgets_everything(client):
    await checkout(client)
    await client.post("/_sandbox/reset", json={"seed": True})
    assert (await _orders(client))["totalCount"] == 0
