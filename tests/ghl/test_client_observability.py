"""What the client leaves behind: each HTTP attempt in the event's outbound-call log, and logs that
never contain a token, at any level."""

from __future__ import annotations

import logging

import httpx
import pytest
import respx

from tests.support import ghl_kit as kit
from tests.support.ghl_kit import LOC, ORDER_ID, FakeTokens
from wizesync.ghl.errors import GhlServerError
from wizesync.logs import JsonFormatter
from wizesync.outbound import OUTBOUND_CALLS

ORDER_URL = f"{kit.BASE}/payments/orders/{ORDER_ID}"
INVALID_TOKEN = {"statusCode": 401, "message": "Invalid token: access token is invalid"}


@respx.mock
async def test_every_attempt_is_recorded_as_an_outbound_call() -> None:
    calls: list[dict] = []
    reset = OUTBOUND_CALLS.set(calls)
    try:
        respx.get(ORDER_URL).mock(
            side_effect=[
                httpx.ReadTimeout("slow"),
                httpx.Response(503),
                httpx.Response(200, json=kit.order()),
            ]
        )
        respx.post(f"{kit.BASE}/invoices/{kit.INVOICE_ID}/void").respond(500, json={"message": "x"})
        async with httpx.AsyncClient() as http:
            client = kit.make_client(http)
            await client.get_order(LOC, ORDER_ID)
            with pytest.raises(GhlServerError):
                await client.void_invoice(LOC, kit.INVOICE_ID)
    finally:
        OUTBOUND_CALLS.reset(reset)

    assert [(c["method"], c["status"]) for c in calls] == [
        ("GET", None),
        ("GET", 503),
        ("GET", 200),
        ("POST", 500),
    ]
    assert calls[0]["url"] == f"{ORDER_URL}?altId={LOC}&altType=location"
    assert calls[3]["url"] == f"{kit.BASE}/invoices/{kit.INVOICE_ID}/void"
    assert all(c["ms"] >= 0 for c in calls)


@respx.mock
async def test_outbound_call_log_leaves_out_the_email_searched_for() -> None:
    calls: list[dict] = []
    reset = OUTBOUND_CALLS.set(calls)
    try:
        route = respx.get(f"{kit.BASE}/contacts/search/duplicate").respond(
            200, json={"contact": None}
        )
        async with httpx.AsyncClient() as http:
            assert await kit.make_client(http).find_contact_by_email(LOC, "ada@x.test") is None
    finally:
        OUTBOUND_CALLS.reset(reset)
    assert route.calls.last.request.url.params["email"] == "ada@x.test"  # sent to GHL...
    assert "ada" not in calls[0]["url"]  # ...but not kept in our logs


@respx.mock
async def test_no_token_appears_in_logs_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    tokens = FakeTokens()
    secrets = ["tok-1-secret-value", "tok-2-secret-value"]
    respx.get(ORDER_URL).mock(
        side_effect=[
            httpx.Response(401, json=INVALID_TOKEN),  # refresh
            httpx.Response(429, headers={"Retry-After": "1"}),  # wait and retry
            httpx.Response(500, json={"message": "boom", "traceId": "t"}),  # backoff and retry
            httpx.Response(200, json=kit.order()),
        ]
    )
    respx.post(f"{kit.BASE}/invoices/{kit.INVOICE_ID}/void").respond(503, json={"message": "down"})
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient() as http:
        client = kit.make_client(http, tokens=tokens)
        await client.get_order(LOC, ORDER_ID)
        with pytest.raises(GhlServerError) as caught:
            await client.void_invoice(LOC, kit.INVOICE_ID)
        logging.getLogger("test").exception("void failed", exc_info=caught.value)

    assert any(r.name == "wizesync.ghl" and r.levelno == logging.DEBUG for r in caplog.records)
    assert any("retrying" in r.getMessage() for r in caplog.records)
    formatter = JsonFormatter()
    for record in caplog.records:
        rendered = " ".join([record.getMessage(), repr(record.__dict__), formatter.format(record)])
        for secret in secrets:
            assert secret not in rendered, f"token leaked in {record.name}: {record.getMessage()}"
    for secret in secrets:
        assert secret not in caplog.text
        assert secret not in str(caught.value)
