"""What the client puts on the wire for each call of the contract, and what it makes of answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
import respx

from tests.wizehire import kit
from tests.wizehire.kit import API_KEY, KEY, ORDERS_URL, REFUND_URL, SYNC_URL
from wizesync.wizehire.client import idempotency_key
from wizesync.wizehire.errors import WizehireBadResponse

SINCE = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)


@respx.mock
async def test_order_sync_is_a_patch_with_the_contract_body_and_the_callers_key() -> None:
    route = respx.patch(SYNC_URL).respond(200, json={"id": kit.ORDER_ID})
    async with httpx.AsyncClient() as http:
        result = await kit.make_client(http).sync_order(
            kit.ORDER_ID, kit.order_sync(), idempotency_key=KEY
        )

    assert route.call_count == 1
    request = route.calls.last.request
    assert request.method == "PATCH"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Idempotency-Key"] == KEY
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert json.loads(request.content) == kit.ORDER_SYNC_JSON
    assert result.status == 200 and result.body == {"id": kit.ORDER_ID}
    assert result.replayed is False


@respx.mock
async def test_refund_update_is_a_patch_with_the_contract_body_and_the_callers_key() -> None:
    route = respx.patch(REFUND_URL).respond(200, json={"id": kit.REFUND_ID})
    async with httpx.AsyncClient() as http:
        await kit.make_client(http).update_refund(
            kit.REFUND_ID, kit.refund_update(), idempotency_key="wizesync:evt_9:refund"
        )

    assert route.call_count == 1
    request = route.calls.last.request
    assert request.method == "PATCH"
    assert request.headers["Idempotency-Key"] == "wizesync:evt_9:refund"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == kit.REFUND_JSON


@respx.mock
async def test_a_write_wizehire_had_already_performed_is_reported_as_replayed() -> None:
    respx.patch(SYNC_URL).respond(
        200, json={"id": kit.ORDER_ID}, headers={"Idempotent-Replayed": "true"}
    )
    async with httpx.AsyncClient() as http:
        result = await kit.make_client(http).sync_order(
            kit.ORDER_ID, kit.order_sync(), idempotency_key=KEY
        )
    assert result.replayed is True


@respx.mock
async def test_an_empty_204_answer_to_a_write_is_fine() -> None:
    respx.patch(REFUND_URL).respond(204)
    async with httpx.AsyncClient() as http:
        result = await kit.make_client(http).update_refund(
            kit.REFUND_ID, kit.refund_update(), idempotency_key=KEY
        )
    assert result.status == 204 and result.body == {}


@pytest.mark.parametrize("bad_key", ["", "has space", "new\nline", "x" * 256, None])
async def test_a_write_without_a_usable_idempotency_key_is_refused_before_sending(
    bad_key: str | None,
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: pytest.fail("nothing may be sent"))
    ) as http:
        with pytest.raises(ValueError, match="idempotency_key"):
            await kit.make_client(http).sync_order(
                kit.ORDER_ID, kit.order_sync(), idempotency_key=bad_key
            )  # type: ignore[arg-type]


def test_idempotency_keys_derived_from_the_same_event_and_step_are_equal() -> None:
    assert idempotency_key("evt_1", "order-sync") == idempotency_key("evt_1", "order-sync")
    assert idempotency_key("evt_1", "order-sync") != idempotency_key("evt_1", "refund")
    assert idempotency_key(42, "order-sync") == "wizesync:42:order-sync"
    # Parts a header cannot carry as they are become a stable hash.
    odd = idempotency_key("évènement 1", "step")
    assert odd == idempotency_key("évènement 1", "step") and odd.isascii() and " " not in odd


@respx.mock
async def test_ids_are_escaped_so_they_cannot_change_the_path() -> None:
    route = respx.patch(f"{kit.BASE}/v1/orders/a%2F..%2Fb/sync").respond(200, json={})
    async with httpx.AsyncClient() as http:
        client = kit.make_client(http)
        await client.sync_order("a/../b", kit.order_sync(), idempotency_key=KEY)
        with pytest.raises(ValueError):
            await client.sync_order("..", kit.order_sync(), idempotency_key=KEY)
    assert route.call_count == 1


@respx.mock
async def test_list_orders_sends_the_filter_in_utc_and_reads_a_page() -> None:
    route = respx.get(ORDERS_URL).respond(
        200, json={"data": [kit.wizehire_order("wh_ord_1")], "next_cursor": "c2"}
    )
    since = datetime(2026, 11, 27, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    async with httpx.AsyncClient() as http:
        page = await kit.make_client(http).list_orders(since, cursor="c1", limit=25)

    assert route.call_count == 1
    request = route.calls.last.request
    assert request.method == "GET"
    assert dict(request.url.params) == {
        "updated_since": "2026-11-27T12:00:00Z",
        "cursor": "c1",
        "limit": "25",
    }
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert "Idempotency-Key" not in request.headers
    assert [o.id for o in page.data] == ["wh_ord_1"] and page.next_cursor == "c2"
    assert str(page.data[0].amount) == "149.00"


@respx.mock
async def test_iter_orders_follows_next_cursor_over_several_pages() -> None:
    pages = {
        None: (["wh_ord_1", "wh_ord_2"], "p2"),
        "p2": (["wh_ord_3", "wh_ord_4"], "p3"),
        "p3": (["wh_ord_5"], None),
    }

    def answer(request: httpx.Request) -> httpx.Response:
        ids, cursor = pages[request.url.params.get("cursor")]
        return httpx.Response(
            200, json={"data": [kit.wizehire_order(i) for i in ids], "next_cursor": cursor}
        )

    route = respx.get(ORDERS_URL).mock(side_effect=answer)
    async with httpx.AsyncClient() as http:
        ids = [o.id async for o in kit.make_client(http).iter_orders(SINCE, limit=2)]

    assert ids == ["wh_ord_1", "wh_ord_2", "wh_ord_3", "wh_ord_4", "wh_ord_5"]
    assert [c.request.url.params.get("cursor") for c in route.calls] == [None, "p2", "p3"]
    assert {c.request.url.params["limit"] for c in route.calls} == {"2"}
    assert {c.request.url.params["updated_since"] for c in route.calls} == {"2026-11-27T00:00:00Z"}


@respx.mock
async def test_a_cursor_that_comes_back_again_stops_the_iteration() -> None:
    respx.get(ORDERS_URL).mock(
        side_effect=lambda r: httpx.Response(
            200, json={"data": [kit.wizehire_order("wh_ord_1")], "next_cursor": "same"}
        )
    )
    async with httpx.AsyncClient() as http:
        with pytest.raises(WizehireBadResponse, match="already given"):
            [o async for o in kit.make_client(http).iter_orders(SINCE)]


@respx.mock
async def test_a_page_that_is_not_an_orders_page_is_a_bad_response_naming_the_field() -> None:
    broken = kit.wizehire_order("wh_ord_1")
    broken["amount"] = "150.00"  # items add up to 149.00
    route = respx.get(ORDERS_URL).respond(200, json={"data": [broken], "next_cursor": None})
    async with httpx.AsyncClient() as http:
        with pytest.raises(WizehireBadResponse) as caught:
            await kit.make_client(http).list_orders(SINCE)
    assert "data.0" in caught.value.detail and "add up" in caught.value.detail
    assert route.call_count == 1  # asking again would get the same answer


@pytest.mark.parametrize("limit", [0, 1001])
async def test_a_page_size_outside_the_range_is_refused(limit: int) -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ValueError, match="limit"):
            await kit.make_client(http).list_orders(SINCE, limit=limit)
