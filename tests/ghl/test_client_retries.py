"""When the client waits and tries again, and when it must not: reads retry 5xx, timeouts and 429s;
creates retry only 429s (GHL did nothing), never a 5xx or a timeout (it may have happened)."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import respx

from tests.support import ghl_kit as kit
from tests.support.ghl_kit import LOC, ORDER_ID, PRICE_ID, RecordingLimiter, Sleeps
from wizesync.ghl import models as m
from wizesync.ghl.errors import GhlRateLimited, GhlServerError, GhlTimeout

ORDER_URL = f"{kit.BASE}/payments/orders/{ORDER_ID}"
FULFILL_URL = f"{ORDER_URL}/fulfillments"
TOO_MANY = {"statusCode": 429, "message": "Too many requests"}


def _fulfillment() -> m.CreateFulfillment:
    return m.CreateFulfillment(items=[m.FulfillmentItem(price_id=PRICE_ID, qty=1)])


@pytest.mark.parametrize(
    ("headers", "expected_wait"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"X-RateLimit-Interval-Milliseconds": "10000", "X-RateLimit-Remaining": "0"}, 10.0),
        ({}, 10.0),
    ],
    ids=["retry-after", "interval-header", "no-hint"],
)
@respx.mock
async def test_rate_limited_read_waits_what_ghl_says_then_succeeds(headers, expected_wait) -> None:
    sleeps = Sleeps()
    route = respx.get(ORDER_URL).mock(
        side_effect=[
            httpx.Response(429, json=TOO_MANY, headers=headers),
            httpx.Response(200, json=kit.order()),
        ]
    )
    async with httpx.AsyncClient() as http:
        order = await kit.make_client(http, sleep=sleeps).get_order(LOC, ORDER_ID)
    assert order.id == ORDER_ID
    assert route.call_count == 2
    assert sleeps.waits == [expected_wait]


@respx.mock
async def test_rate_limit_longer_than_the_cap_is_handed_to_the_caller() -> None:
    sleeps = Sleeps()
    route = respx.get(ORDER_URL).respond(429, json=TOO_MANY, headers={"Retry-After": "120"})
    async with httpx.AsyncClient() as http:
        client = kit.make_client(http, sleep=sleeps, max_rate_limit_wait=30)
        with pytest.raises(GhlRateLimited) as caught:
            await client.get_order(LOC, ORDER_ID)
    assert caught.value.delay == 120.0 and caught.value.transient
    assert route.call_count == 1 and sleeps.waits == []


@respx.mock
async def test_rate_limited_create_is_sent_again_after_the_wait() -> None:
    sleeps = Sleeps()
    route = respx.post(FULFILL_URL).mock(
        side_effect=[
            httpx.Response(429, json=TOO_MANY, headers={"Retry-After": "2"}),
            httpx.Response(200, json={"status": True, "data": kit.fulfillment()}),
        ]
    )
    async with httpx.AsyncClient() as http:
        await kit.make_client(http, sleep=sleeps).create_fulfillment(LOC, ORDER_ID, _fulfillment())
    assert route.call_count == 2 and sleeps.waits == [2.0]


@respx.mock
async def test_server_errors_on_a_read_are_retried_with_backoff() -> None:
    sleeps = Sleeps()
    route = respx.get(ORDER_URL).mock(
        side_effect=[
            httpx.Response(503, text="unavailable"),
            httpx.Response(500, json={"statusCode": 500, "message": "Internal server error"}),
            httpx.Response(200, json=kit.order()),
        ]
    )
    async with httpx.AsyncClient() as http:
        order = await kit.make_client(http, sleep=sleeps).get_order(LOC, ORDER_ID)
    assert order.amount == Decimal("150.1")
    assert route.call_count == 3
    assert len(sleeps.waits) == 2 and all(w > 0 for w in sleeps.waits)


@respx.mock
async def test_read_that_keeps_failing_gives_up_after_max_attempts() -> None:
    route = respx.get(ORDER_URL).respond(503, json={"statusCode": 503, "message": "down"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(GhlServerError) as caught:
            await kit.make_client(http, max_attempts=3).get_order(LOC, ORDER_ID)
    assert caught.value.status == 503 and caught.value.transient
    assert route.call_count == 3


@respx.mock
async def test_timed_out_read_is_retried() -> None:
    route = respx.get(ORDER_URL).mock(
        side_effect=[
            httpx.ReadTimeout("slow"),
            httpx.ConnectError("refused"),
            httpx.Response(200, json=kit.order()),
        ]
    )
    async with httpx.AsyncClient() as http:
        order = await kit.make_client(http).get_order(LOC, ORDER_ID)
    assert order.id == ORDER_ID and route.call_count == 3


@respx.mock
async def test_contact_search_is_a_read_and_is_retried() -> None:
    route = respx.post(f"{kit.BASE}/contacts/search").mock(
        side_effect=[
            httpx.Response(502, text="bad gateway"),
            httpx.Response(200, json={"contacts": [], "total": 0}),
        ]
    )
    async with httpx.AsyncClient() as http:
        found = await kit.make_client(http).search_contacts(LOC, m.SearchContacts(query="x"))
    assert found.total == 0 and route.call_count == 2


@respx.mock
async def test_server_error_on_create_fulfillment_is_not_retried() -> None:
    sleeps = Sleeps()
    route = respx.post(FULFILL_URL).respond(500, json={"statusCode": 500, "message": "boom"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(GhlServerError):
            await kit.make_client(http, sleep=sleeps).create_fulfillment(
                LOC, ORDER_ID, _fulfillment()
            )
    assert route.call_count == 1 and sleeps.waits == []


@respx.mock
async def test_timed_out_create_fulfillment_is_not_retried() -> None:
    route = respx.post(FULFILL_URL).mock(side_effect=httpx.ReadTimeout("no answer"))
    async with httpx.AsyncClient() as http:
        with pytest.raises(GhlTimeout):
            await kit.make_client(http).create_fulfillment(LOC, ORDER_ID, _fulfillment())
    assert route.call_count == 1


@pytest.mark.parametrize(
    "failure", [httpx.Response(503), httpx.ReadTimeout("slow")], ids=["503", "timeout"]
)
@respx.mock
async def test_record_invoice_payment_failure_is_not_retried(failure) -> None:
    route = respx.post(f"{kit.BASE}/invoices/{kit.INVOICE_ID}/record-payment").mock(
        side_effect=[failure]
    )
    async with httpx.AsyncClient() as http:
        with pytest.raises((GhlServerError, GhlTimeout)):
            await kit.make_client(http).record_invoice_payment(
                LOC, kit.INVOICE_ID, m.RecordInvoicePayment(mode="cash", amount=Decimal("5"))
            )
    assert route.call_count == 1


@respx.mock
async def test_every_attempt_takes_budget_and_reports_its_answer_to_the_limiter() -> None:
    limiter = RecordingLimiter()
    respx.get(ORDER_URL).mock(
        side_effect=[
            httpx.Response(429, json=TOO_MANY, headers={"Retry-After": "1"}),
            httpx.Response(200, json=kit.order()),
        ]
    )
    async with httpx.AsyncClient() as http:
        await kit.make_client(http, limiter=limiter).get_order(LOC, ORDER_ID)
    assert limiter.events == [
        ("acquire", LOC, None),
        ("observe", LOC, 429),
        ("acquire", LOC, None),
        ("observe", LOC, 200),
    ]
