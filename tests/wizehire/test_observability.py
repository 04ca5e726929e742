"""What the client leaves behind: every HTTP exchange in the event's outbound-call log, and log
lines at DEBUG that never contain the API key, the client secret or an access token."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
import pytest
import respx

from tests.wizehire import kit
from tests.wizehire.kit import API_KEY, CLIENT_SECRET, KEY, ORDERS_URL, SYNC_URL, TOKEN_URL
from wizesync.logs import JsonFormatter
from wizesync.outbound import OUTBOUND_CALLS
from wizesync.wizehire.errors import WizehireAuthError

ACCESS_TOKENS = ("at_first_" + "x" * 20, "at_second_" + "y" * 20)


@respx.mock
async def test_every_exchange_is_recorded_as_an_outbound_call() -> None:
    calls: list[dict] = []
    reset = OUTBOUND_CALLS.set(calls)
    try:
        respx.post(TOKEN_URL).mock(return_value=kit.token_answer("at_1"))
        respx.patch(SYNC_URL).mock(
            side_effect=[httpx.ReadTimeout("slow"), httpx.Response(503), httpx.Response(200)]
        )
        respx.get(ORDERS_URL).respond(200, json={"data": [], "next_cursor": None})
        async with httpx.AsyncClient() as http:
            client = kit.make_client(http, auth=kit.client_credentials())
            await client.sync_order(kit.ORDER_ID, kit.order_sync(), idempotency_key=KEY)
            await client.list_orders(datetime(2026, 11, 27, tzinfo=UTC), limit=10)
    finally:
        OUTBOUND_CALLS.reset(reset)

    assert [(c["method"], c["url"], c["status"]) for c in calls] == [
        ("POST", TOKEN_URL, 200),
        ("PATCH", SYNC_URL, None),
        ("PATCH", SYNC_URL, 503),
        ("PATCH", SYNC_URL, 200),
        ("GET", f"{ORDERS_URL}?updated_since=2026-11-27T00%3A00%3A00Z&limit=10", 200),
    ]
    assert all(c["ms"] >= 0 for c in calls)


@respx.mock
async def test_no_secret_or_token_reaches_the_logs_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    respx.post(TOKEN_URL).mock(side_effect=[kit.token_answer(t) for t in ACCESS_TOKENS])
    respx.patch(SYNC_URL).mock(
        side_effect=[
            httpx.Response(401, json={"message": "expired"}),  # -> second token
            httpx.Response(500, json={"message": "boom"}),  # -> retry warning
            httpx.Response(200, json={}),
        ]
    )
    respx.patch(f"{kit.BASE}/v1/refunds/{kit.REFUND_ID}").respond(401, json={"message": "bad key"})
    async with httpx.AsyncClient() as http:
        await kit.make_client(http, auth=kit.client_credentials()).sync_order(
            kit.ORDER_ID, kit.order_sync(), idempotency_key=KEY
        )
        with pytest.raises(WizehireAuthError):
            await kit.make_client(http).update_refund(
                kit.REFUND_ID, kit.refund_update(), idempotency_key=KEY
            )

    assert any(
        r.levelno == logging.DEBUG and r.name == "wizesync.wizehire" for r in caplog.records
    ), "DEBUG should log each call"
    assert any("retrying" in r.getMessage() for r in caplog.records)
    formatter = JsonFormatter()
    for record in caplog.records:
        raw = " ".join([record.getMessage(), repr(record.args), repr(vars(record))])
        for secret in (API_KEY, CLIENT_SECRET, *ACCESS_TOKENS):
            assert secret not in raw, f"{record.name}: {record.getMessage()}"
            assert secret not in formatter.format(record)
