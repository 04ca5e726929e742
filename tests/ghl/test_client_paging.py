"""`iter_*` walk a whole list with limit/offset, whatever keys the endpoint pages with."""

from __future__ import annotations

import httpx
import pytest
import respx

from tests.support import ghl_kit as kit
from tests.support.ghl_kit import LOC
from wizesync.ghl.errors import GhlError


def _paged(make, key: str, total_key: str | None, count: int):
    """A respx side effect serving `count` items by limit/offset, recording each (limit, offset)."""
    asked: list[tuple[int, int]] = []

    def serve(request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params["limit"])
        offset = int(request.url.params["offset"])
        asked.append((limit, offset))
        items = [make(i) for i in range(offset, min(offset + limit, count))]
        body = {key: items}
        if total_key:
            body[total_key] = count
        return httpx.Response(200, json=body)

    return serve, asked


@respx.mock
async def test_iter_orders_walks_every_page_in_order() -> None:
    serve, asked = _paged(lambda i: kit.order(_id=f"{i:024x}"), "data", "totalCount", 250)
    respx.get(f"{kit.BASE}/payments/orders").mock(side_effect=serve)
    async with httpx.AsyncClient() as http:
        client = kit.make_client(http)
        ids = [o.id async for o in client.iter_orders(LOC, payment_status="paid")]
    assert ids == [f"{i:024x}" for i in range(250)]
    assert asked == [(100, 0), (100, 100), (100, 200)]


@respx.mock
async def test_iter_orders_stops_at_the_total_without_asking_for_an_empty_page() -> None:
    serve, asked = _paged(lambda i: kit.order(_id=f"{i:024x}"), "data", "totalCount", 200)
    respx.get(f"{kit.BASE}/payments/orders").mock(side_effect=serve)
    async with httpx.AsyncClient() as http:
        orders = [o async for o in kit.make_client(http).iter_orders(LOC)]
    assert len(orders) == 200 and asked == [(100, 0), (100, 100)]


@respx.mock
async def test_iter_invoices_pages_with_invoices_and_total_keys() -> None:
    serve, asked = _paged(lambda i: kit.invoice(_id=f"{i:024x}"), "invoices", "total", 7)
    route = respx.get(f"{kit.BASE}/invoices/").mock(side_effect=serve)
    async with httpx.AsyncClient() as http:
        invoices = [i async for i in kit.make_client(http).iter_invoices(LOC, page_size=3)]
    assert len(invoices) == 7 and asked == [(3, 0), (3, 3), (3, 6)]
    assert route.calls.last.request.url.params["altType"] == "location"


@respx.mock
async def test_iter_prices_pages_with_prices_and_total_keys() -> None:
    serve, asked = _paged(lambda i: kit.price(_id=f"{i:024x}"), "prices", "total", 4)
    respx.get(f"{kit.BASE}/products/{kit.PRODUCT_ID}/price").mock(side_effect=serve)
    async with httpx.AsyncClient() as http:
        client = kit.make_client(http)
        prices = [p async for p in client.iter_prices(LOC, kit.PRODUCT_ID, page_size=2)]
    assert [p.id for p in prices] == [f"{i:024x}" for i in range(4)]
    assert asked == [(2, 0), (2, 2)]


@respx.mock
async def test_list_without_a_total_stops_at_a_short_page() -> None:
    serve, asked = _paged(
        lambda i: {**kit.whitelabel_provider(), "_id": f"{i:024x}"}, "providers", None, 5
    )
    respx.get(f"{kit.BASE}/payments/integrations/provider/whitelabel").mock(side_effect=serve)
    async with httpx.AsyncClient() as http:
        client = kit.make_client(http)
        providers = [p async for p in client.iter_whitelabel_providers(LOC, page_size=2)]
    assert len(providers) == 5 and asked == [(2, 0), (2, 2), (2, 4)]


@respx.mock
async def test_transactions_and_subscriptions_iterate_with_their_filters() -> None:
    txns, _ = _paged(lambda i: kit.transaction(_id=f"{i:024x}"), "data", "totalCount", 3)
    subs, _ = _paged(lambda i: kit.subscription(_id=f"{i:024x}"), "data", "totalCount", 2)
    t_route = respx.get(f"{kit.BASE}/payments/transactions").mock(side_effect=txns)
    respx.get(f"{kit.BASE}/payments/subscriptions").mock(side_effect=subs)
    async with httpx.AsyncClient() as http:
        client = kit.make_client(http)
        found = [t async for t in client.iter_transactions(LOC, entity_id=kit.ORDER_ID)]
        subscriptions = [s async for s in client.iter_subscriptions(LOC)]
    assert len(found) == 3 and len(subscriptions) == 2
    assert t_route.calls.last.request.url.params["entityId"] == kit.ORDER_ID


@respx.mock
async def test_max_items_stops_early() -> None:
    serve, asked = _paged(lambda i: kit.order(_id=f"{i:024x}"), "data", "totalCount", 1000)
    respx.get(f"{kit.BASE}/payments/orders").mock(side_effect=serve)
    async with httpx.AsyncClient() as http:
        client = kit.make_client(http)
        orders = [o async for o in client.iter_orders(LOC, page_size=10, max_items=15)]
    assert len(orders) == 15 and asked == [(10, 0), (10, 10)]


@respx.mock
async def test_empty_list_asks_once() -> None:
    route = respx.get(f"{kit.BASE}/payments/orders").respond(
        200, json={"data": [], "totalCount": 0}
    )
    async with httpx.AsyncClient() as http:
        orders = [o async for o in kit.make_client(http).iter_orders(LOC)]
    assert orders == [] and route.call_count == 1


@respx.mock
async def test_server_ignoring_offset_raises_instead_of_looping_forever() -> None:
    page = [kit.order(_id=f"{i:024x}") for i in range(2)]
    route = respx.get(f"{kit.BASE}/payments/orders").respond(200, json={"data": page})
    async with httpx.AsyncClient() as http:
        client = kit.make_client(http)
        with pytest.raises(GhlError, match="paging did not advance"):
            _ = [o async for o in client.iter_orders(LOC, page_size=2)]
    assert route.call_count == 2
