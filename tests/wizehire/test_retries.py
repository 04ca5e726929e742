"""When the client tries again and when it must not. Writes are retried like reads because each
retry carries the same Idempotency-Key and the same body; the sleeps are recorded, not slept."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from tests.wizehire import kit
from tests.wizehire.kit import KEY, ORDERS_URL, SYNC_URL, Sleeps
from wizesync.wizehire.client import WriteResult
from wizesync.wizehire.errors import (
    WizehireAuthError,
    WizehireError,
    WizehireNotFound,
    WizehireRateLimited,
    WizehireServerError,
    WizehireUnavailable,
    WizehireValidationError,
)

SINCE = datetime(2026, 11, 27, tzinfo=UTC)


async def _sync(sleeps: Sleeps, **kwargs: Any) -> WriteResult:
    async with httpx.AsyncClient() as http:
        return await kit.make_client(http, sleep=sleeps, **kwargs).sync_order(
            kit.ORDER_ID, kit.order_sync(), idempotency_key=KEY
        )


def _same_write_every_time(route: respx.Route) -> None:
    assert {c.request.headers["Idempotency-Key"] for c in route.calls} == {KEY}
    assert len({c.request.content for c in route.calls}) == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500, json={"message": "boom"}),
        httpx.Response(502, text="bad gateway"),
        httpx.Response(503, text="unavailable"),
        httpx.Response(409, json={"error": "in_progress", "message": "still processing"}),
        httpx.ReadTimeout("slow"),
        httpx.ConnectTimeout("no route"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("peer closed"),
    ],
    ids=[
        "500",
        "502",
        "503",
        "409-in-progress",
        "read-timeout",
        "connect-timeout",
        "connect-error",
        "dropped",
    ],
)
@respx.mock
async def test_a_failed_write_is_sent_again_with_the_same_key_and_body(
    failure: httpx.Response | Exception,
) -> None:
    sleeps = Sleeps()
    route = respx.patch(SYNC_URL).mock(
        side_effect=[failure, failure, httpx.Response(200, json={"ok": True})]
    )
    result = await _sync(sleeps)
    assert result.body == {"ok": True}
    assert route.call_count == 3
    _same_write_every_time(route)
    assert len(sleeps.waits) == 2 and all(0 < w <= 10.5 for w in sleeps.waits)


@respx.mock
async def test_429_waits_what_retry_after_says_then_sends_the_same_write() -> None:
    sleeps = Sleeps()
    route = respx.patch(SYNC_URL).mock(
        side_effect=[
            httpx.Response(429, json={"message": "slow down"}, headers={"Retry-After": "7"}),
            httpx.Response(429, json={"message": "slow down"}),
            httpx.Response(200, json={}),
        ]
    )
    await _sync(sleeps)
    assert sleeps.waits == [7.0, 5.0]  # Retry-After, then the default when none is given
    _same_write_every_time(route)


@respx.mock
async def test_503_with_retry_after_waits_that_long() -> None:
    sleeps = Sleeps()
    respx.patch(SYNC_URL).mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": "3"}),
            httpx.Response(200, json={}),
        ]
    )
    await _sync(sleeps)
    assert sleeps.waits == [3.0]


@respx.mock
async def test_a_retry_after_beyond_the_cap_goes_to_the_caller_with_its_delay() -> None:
    sleeps = Sleeps()
    route = respx.patch(SYNC_URL).respond(
        429, json={"message": "quota"}, headers={"Retry-After": "600"}
    )
    with pytest.raises(WizehireRateLimited) as caught:
        await _sync(sleeps, max_retry_wait=30)
    assert caught.value.delay == 600.0 and caught.value.transient
    assert route.call_count == 1 and sleeps.waits == []


@respx.mock
async def test_timeouts_on_every_attempt_end_as_unavailable() -> None:
    sleeps = Sleeps()
    route = respx.patch(SYNC_URL).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(WizehireUnavailable) as caught:
        await _sync(sleeps, max_attempts=4)
    assert route.call_count == 4 and len(sleeps.waits) == 3
    assert caught.value.attempts == 4 and caught.value.status is None
    assert "timed out" in str(caught.value) and caught.value.transient
    _same_write_every_time(route)


@respx.mock
async def test_server_errors_on_every_attempt_end_as_a_server_error_with_detail() -> None:
    route = respx.patch(SYNC_URL).respond(500, json={"title": "Internal", "detail": "db down"})
    with pytest.raises(WizehireServerError) as caught:
        await _sync(Sleeps(), max_attempts=3)
    assert route.call_count == 3
    assert (caught.value.status, caught.value.detail, caught.value.attempts) == (500, "db down", 3)


@respx.mock
async def test_reads_are_retried_too() -> None:
    sleeps = Sleeps()
    route = respx.get(ORDERS_URL).mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.Response(503),
            httpx.Response(200, json={"data": [], "next_cursor": None}),
        ]
    )
    async with httpx.AsyncClient() as http:
        page = await kit.make_client(http, sleep=sleeps).list_orders(SINCE)
    assert page.data == [] and route.call_count == 3 and len(sleeps.waits) == 2


@pytest.mark.parametrize(
    ("status", "body", "error", "detail"),
    [
        (
            400,
            {"error": "idempotency_key_required", "message": "every write needs a key"},
            WizehireValidationError,
            "every write needs a key",
        ),
        (
            403,
            {"detail": "this client may not write refunds"},
            WizehireAuthError,
            "this client may not write refunds",
        ),
        (
            404,
            {"error": "not_found", "message": "no order wh_ord_1001"},
            WizehireNotFound,
            "no order wh_ord_1001",
        ),
        (
            422,
            {
                "error": "idempotency_key_reused",
                "message": "this Idempotency-Key was used for a different request",
            },
            WizehireValidationError,
            "this Idempotency-Key was used for a different request",
        ),
        (418, {"message": "teapot"}, WizehireError, "teapot"),
    ],
    ids=["400", "403", "404", "422-key-reused", "other-4xx"],
)
@respx.mock
async def test_client_errors_are_not_retried_and_are_typed_with_detail(
    status: int,
    body: dict,
    error: type[WizehireError],
    detail: str,
) -> None:
    sleeps = Sleeps()
    route = respx.patch(SYNC_URL).respond(status, json=body)
    with pytest.raises(error) as caught:
        await _sync(sleeps)
    assert type(caught.value) is error
    assert caught.value.status == status and caught.value.detail == detail
    assert caught.value.code == body.get("error")
    assert not caught.value.transient
    assert route.call_count == 1 and sleeps.waits == []


@respx.mock
async def test_validation_error_carries_the_field_errors() -> None:
    respx.patch(SYNC_URL).respond(
        422,
        json={
            "error": "validation_error",
            "message": "the request body is not valid",
            "errors": [
                {"loc": ["body", "payment_status"], "msg": "must be one of pending, paid"},
                {"loc": ["body", "subscription", "status"], "msg": "must be a string"},
            ],
        },
    )
    with pytest.raises(WizehireValidationError) as caught:
        await _sync(Sleeps())
    assert caught.value.errors == [
        {"loc": ["body", "payment_status"], "msg": "must be one of pending, paid"},
        {"loc": ["body", "subscription", "status"], "msg": "must be a string"},
    ]
    assert "body.payment_status: must be one of pending, paid" in str(caught.value)


@respx.mock
async def test_an_error_answer_in_plain_text_keeps_its_words() -> None:
    respx.patch(SYNC_URL).respond(404, text="Not here")
    with pytest.raises(WizehireNotFound) as caught:
        await _sync(Sleeps())
    assert caught.value.detail == "Not here"
