"""The GHL client (wizesync.ghl) and the sandbox fit together: the public way to put a Wizehire
sale into GHL, end to end over the client's typed calls."""

from __future__ import annotations

from datetime import date

from wizesync.ghl import models as m
from wizesync.ghl.client import GhlClient
from wizesync.ghl.limits import InMemoryRateLimiter, StaticTokenProvider
from wizesync_sandbox.defaults import BOOST_PRICE_ID, BOOST_PRODUCT_ID, DEFAULT_LOCATION_ID

LOC = DEFAULT_LOCATION_ID


async def test_contact_invoice_payment_order_and_fulfillment_through_the_client(client):
    ghl = GhlClient(
        client,
        base_url="http://sandbox/ghl",
        version="2021-07-28",
        tokens=StaticTokenProvider("pit-token", LOC),
        limiter=InMemoryRateLimiter(),
    )
    contact = (
        await ghl.upsert_contact(
            LOC, m.UpsertContact(email="pat@example.com", first_name="Pat", last_name="Lee")
        )
    ).contact
    assert (await ghl.find_contact_by_email(LOC, "PAT@example.com")).id == contact.id

    invoice = await ghl.create_invoice(
        LOC,
        m.CreateInvoice(
            name="Wizehire order wh_ord_1001",
            currency="USD",
            items=[
                m.InvoiceItem(
                    name="Job ad boost, 30 days",
                    currency="USD",
                    amount="149.00",
                    qty=1,
                    priceId=BOOST_PRICE_ID,
                    productId=BOOST_PRODUCT_ID,
                )
            ],
            contact_details=m.InvoiceContactDetails(
                id=contact.id, name="Pat Lee", email="pat@example.com"
            ),
            issue_date=date(2026, 11, 27),
            sent_to=m.SentTo(email=["pat@example.com"]),
            live_mode=False,
        ),
    )
    paid = await ghl.record_invoice_payment(LOC, invoice.id, m.RecordInvoicePayment(mode="cash"))
    assert paid.success

    (listed,) = (await ghl.list_orders(LOC)).items
    order = await ghl.get_order(LOC, listed.id)
    assert order.source is not None and order.source.type == "invoice"
    assert order.source.id == invoice.id
    (txn,) = (await ghl.list_transactions(LOC, entity_id=order.id)).items
    assert txn.status == "succeeded" and str(txn.amount) == "149"

    await ghl.create_fulfillment(
        LOC,
        order.id,
        m.CreateFulfillment(items=[m.FulfillmentItem(price_id=BOOST_PRICE_ID, qty=1)]),
    )
    assert len(await ghl.list_fulfillments(LOC, order.id)) == 1
