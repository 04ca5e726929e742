"""GHL's error answers become typed exceptions carrying GHL's messages and traceId; 401s refresh
exactly once, and only when a fresh token can help."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import respx

from tests.support import ghl_kit as kit
from tests.support.ghl_kit import INVOICE_ID, LOC, ORDER_ID, FakeTokens
from wizesync.ghl import models as m
from wizesync.ghl.errors import (
    GhlAuthError,
    GhlError,
    GhlLocationInactive,
    GhlNeedsReauth,
    GhlNotFound,
    GhlScopeError,
    GhlServerError,
    GhlValidationError,
    retry_after_seconds,
)
from wizesync.ghl.limits import StaticTokenProvider

ORDER_URL = f"{kit.BASE}/payments/orders/{ORDER_ID}"
INVALID_TOKEN = {
    "statusCode": 401,
    "message": "Invalid token: access token is invalid",
    "error": "Unauthorized",
}


def _invoice_body() -> m.CreateInvoice:
    return m.CreateInvoice(
        name="Order 1001",
        currency="USD",
        items=[m.InvoiceItem(name="Job ad", currency="USD", amount=Decimal("10"), qty=1)],
        contact_details=m.InvoiceContactDetails(
            id="seD4PfOuKoVMLkEZqohJ", name="Ada", email="ada@example.com"
        ),
        issue_date="2024-01-23",
        sent_to=m.SentTo(email=["ada@example.com"]),
        live_mode=True,
    )


@pytest.mark.parametrize(
    ("body", "trace_id"),
    [
        ({"statusCode": 404, "message": "Order not found", "error": "Not Found"}, None),
        (
            {
                "status": 404,
                "message": "Order not found",
                "name": "NotFoundError",
                "traceId": "8b1f-44c2",
            },
            "8b1f-44c2",
        ),
    ],
    ids=["statusCode-shape", "status-name-traceId-shape"],
)
@respx.mock
async def test_missing_order_raises_not_found_with_either_body_shape(body, trace_id) -> None:
    route = respx.get(ORDER_URL).respond(404, json=body)
    async with httpx.AsyncClient() as http:
        with pytest.raises(GhlNotFound) as caught:
            await kit.make_client(http).get_order(LOC, ORDER_ID)
    assert caught.value.status == 404
    assert caught.value.message == "Order not found"
    assert caught.value.trace_id == trace_id
    assert route.call_count == 1  # a 404 is an answer, not a failure to retry


@respx.mock
async def test_invoice_rejected_with_422_keeps_every_ghl_message_and_is_sent_once() -> None:
    messages = ["contactDetails.email must be an email", "items must contain at least 1 elements"]
    route = respx.post(f"{kit.BASE}/invoices/").respond(
        422,
        json={
            "statusCode": 422,
            "message": messages,
            "error": "Unprocessable Entity",
            "traceId": "t-422",
        },
    )
    async with httpx.AsyncClient() as http:
        with pytest.raises(GhlValidationError) as caught:
            await kit.make_client(http).create_invoice(LOC, _invoice_body())
    assert caught.value.messages == messages
    assert caught.value.trace_id == "t-422"
    assert not caught.value.transient
    assert route.call_count == 1


@respx.mock
async def test_expired_token_is_refreshed_once_and_the_call_succeeds() -> None:
    tokens = FakeTokens()
    route = respx.get(ORDER_URL).mock(
        side_effect=[
            httpx.Response(401, json=INVALID_TOKEN),
            httpx.Response(200, json=kit.order()),
        ]
    )
    async with httpx.AsyncClient() as http:
        order = await kit.make_client(http, tokens=tokens).get_order(LOC, ORDER_ID)
    assert order.id == ORDER_ID
    assert tokens.rejected == [(LOC, "tok-1-secret-value")]
    auth = [call.request.headers["Authorization"] for call in route.calls]
    assert auth == ["Bearer tok-1-secret-value", "Bearer tok-2-secret-value"]


@respx.mock
async def test_expired_token_on_create_is_refreshed_and_resent_once() -> None:
    """A 401 means GHL did nothing, so resending a create after the refresh is safe."""
    tokens = FakeTokens()
    route = respx.post(f"{kit.BASE}/invoices/").mock(
        side_effect=[
            httpx.Response(401, json=INVALID_TOKEN),
            httpx.Response(200, json=kit.invoice()),
        ]
    )
    async with httpx.AsyncClient() as http:
        created = await kit.make_client(http, tokens=tokens).create_invoice(LOC, _invoice_body())
    assert created.id == INVOICE_ID
    assert len(tokens.rejected) == 1 and route.call_count == 2


@respx.mock
async def test_token_still_rejected_after_refresh_raises_without_a_second_refresh() -> None:
    tokens = FakeTokens()
    route = respx.get(ORDER_URL).respond(401, json=INVALID_TOKEN)
    async with httpx.AsyncClient() as http:
        with pytest.raises(GhlAuthError) as caught:
            await kit.make_client(http, tokens=tokens).get_order(LOC, ORDER_ID)
    assert caught.value.status == 401
    assert len(tokens.rejected) == 1
    assert route.call_count == 2


@respx.mock
async def test_missing_scope_raises_scope_error_without_refreshing() -> None:
    tokens = FakeTokens()
    route = respx.get(ORDER_URL).respond(
        401,
        json={
            "statusCode": 401,
            "message": "The token is not authorized for this scope.",
            "error": "Unauthorized",
        },
    )
    async with httpx.AsyncClient() as http:
        with pytest.raises(GhlScopeError):
            await kit.make_client(http, tokens=tokens).get_order(LOC, ORDER_ID)
    assert tokens.rejected == []
    assert route.call_count == 1


@respx.mock
async def test_rejected_private_integration_token_needs_a_human() -> None:
    route = respx.get(ORDER_URL).respond(401, json=INVALID_TOKEN)
    async with httpx.AsyncClient() as http:
        client = kit.make_client(http, tokens=StaticTokenProvider("pit-secret-value", LOC))
        with pytest.raises(GhlNeedsReauth):
            await client.get_order(LOC, ORDER_ID)
    assert route.call_count == 1


@respx.mock
async def test_paused_location_raises_location_inactive_with_a_delay() -> None:
    respx.get(ORDER_URL).respond(400, json={"statusCode": 400, "message": "Location is not active"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(GhlLocationInactive) as caught:
            await kit.make_client(http).get_order(LOC, ORDER_ID)
    assert caught.value.transient and caught.value.delay > 0


@respx.mock
async def test_server_error_on_create_carries_the_trace_id() -> None:
    respx.post(f"{kit.BASE}/invoices/").respond(
        500, json={"status": 500, "message": "Internal error", "traceId": "abc-123"}
    )
    async with httpx.AsyncClient() as http:
        with pytest.raises(GhlServerError) as caught:
            await kit.make_client(http).create_invoice(LOC, _invoice_body())
    assert caught.value.trace_id == "abc-123"
    assert "traceId=abc-123" in str(caught.value)


@respx.mock
async def test_html_gateway_page_becomes_a_server_error_with_its_text() -> None:
    respx.post(f"{kit.BASE}/invoices/").respond(502, text="<html>Bad gateway</html>")
    async with httpx.AsyncClient() as http:
        with pytest.raises(GhlServerError) as caught:
            await kit.make_client(http).create_invoice(LOC, _invoice_body())
    assert caught.value.status == 502 and "Bad gateway" in caught.value.message


@respx.mock
async def test_answer_missing_the_id_is_reported_not_half_parsed() -> None:
    respx.get(ORDER_URL).respond(200, json={"status": "completed"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(GhlError, match="unexpected answer") as caught:
            await kit.make_client(http).get_order(LOC, ORDER_ID)
    assert type(caught.value) is GhlError


@respx.mock
async def test_id_that_would_change_the_path_is_refused_before_any_request() -> None:
    route = respx.route().respond(200, json={})
    async with httpx.AsyncClient() as http:
        client = kit.make_client(http)
        with pytest.raises(ValueError, match="order id"):
            await client.get_order(LOC, "../../contacts/x")
        with pytest.raises(ValueError, match="location id"):
            await client.get_order("loc/../other", ORDER_ID)
    assert route.call_count == 0


@respx.mock
async def test_body_for_another_location_is_refused() -> None:
    route = respx.route().respond(200, json={})
    body = _invoice_body().model_copy(update={"alt_id": "otherLocation12345678"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(ValueError, match="location"):
            await kit.make_client(http).create_invoice(LOC, body)
    assert route.call_count == 0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past: go now
        ({"X-RateLimit-Interval-Milliseconds": "2500"}, 2.5),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_reads_seconds_dates_or_the_interval(headers, expected) -> None:
    assert retry_after_seconds(headers) == expected
