"""The events admin API: list, show with attempts, replay; behind ADMIN_TOKEN when it is set."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings
from tests.support.ops_kit import CUSTOMER_EMAIL, PROBLEM_JSON, order_event, post_wizehire
from tests.support.signing import ghl_request
from tests.support.waiting import eventually, wait_for_status
from wizesync import samples
from wizesync.inbox.context import PermanentFailure
from wizesync.inbox.registry import HandlerRegistry
from wizesync.outbound import record_outbound_call

SUMMARY_KEYS = {
    "id",
    "source",
    "event_id",
    "type",
    "ordering_key",
    "status",
    "attempts",
    "next_attempt_at",
    "received_at",
    "handled_at",
    "last_error",
}


async def post_ghl(client: httpx.AsyncClient, payload: dict[str, Any]) -> httpx.Response:
    body, headers = ghl_request(payload)
    return await client.post("/webhooks/ghl", content=body, headers=headers)


async def ids_of(client: httpx.AsyncClient, **params: Any) -> list[int]:
    response = await client.get("/admin/events", params=params)
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["data"]]


@pytest.fixture
async def mixed_inbox(client_factory, settings) -> tuple[httpx.AsyncClient, dict[str, int]]:
    """No worker; one event of each kind the inbox can hold on arrival, in this order."""
    client = await client_factory(make_settings(settings.database_url, worker="off"))
    ids = {}
    ids["wizehire_queued"] = (await post_wizehire(client, order_event())).json()["id"]
    unknown = {"type": "customer.created", "timestamp": "2026-11-27T12:00:00Z", "data": {}}
    ids["wizehire_ignored"] = (await post_wizehire(client, unknown)).json()["id"]
    ids["ghl_queued"] = (await post_ghl(client, samples.ghl_event("OrderCreate"))).json()["id"]
    broken = samples.ghl_event("OrderCreate")
    del broken["_id"]
    response = await post_ghl(client, broken)
    assert response.json()["status"] == "quarantined"
    ids["ghl_quarantined"] = response.json()["id"]
    return client, ids


# --- list -----------------------------------------------------------------------------------------


async def test_event_list_is_newest_first_without_payloads(mixed_inbox) -> None:
    client, ids = mixed_inbox
    response = await client.get("/admin/events")
    assert response.status_code == 200
    rows = response.json()["data"]
    assert [row["id"] for row in rows] == sorted(ids.values(), reverse=True)
    for row in rows:
        assert set(row) == SUMMARY_KEYS
    assert CUSTOMER_EMAIL not in response.text  # no payload bodies in the list
    quarantined = next(row for row in rows if row["id"] == ids["ghl_quarantined"])
    assert quarantined["status"] == "quarantined" and "_id" in quarantined["last_error"]


async def test_event_list_filters_by_status_source_and_limit(mixed_inbox) -> None:
    client, ids = mixed_inbox
    assert await ids_of(client, status="queued") == [ids["ghl_queued"], ids["wizehire_queued"]]
    assert await ids_of(client, status="ignored") == [ids["wizehire_ignored"]]
    assert await ids_of(client, source="ghl") == [ids["ghl_quarantined"], ids["ghl_queued"]]
    assert await ids_of(client, source="wizehire", status="queued") == [ids["wizehire_queued"]]
    assert await ids_of(client, status="dead") == []
    assert await ids_of(client, limit=2) == [ids["ghl_quarantined"], ids["ghl_queued"]]
    assert await ids_of(client, before_id=ids["ghl_queued"]) == [
        ids["wizehire_ignored"],
        ids["wizehire_queued"],
    ]


async def test_event_list_rejects_an_unknown_status_or_source(mixed_inbox) -> None:
    client, _ = mixed_inbox
    for params in ({"status": "finished"}, {"source": "stripe"}, {"limit": 501}):
        response = await client.get("/admin/events", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["errors"][0]["loc"] == f"query.{next(iter(params))}"


# --- show -----------------------------------------------------------------------------------------


def flaky_registry() -> HandlerRegistry:
    """Fails its first attempt after one outbound call, succeeds on the second after two."""
    registry = HandlerRegistry()

    @registry.on("wizehire", "order.created")
    async def handle(ctx: Any) -> None:
        order_id = ctx.event.payload["data"]["order"]["id"]
        if ctx.event.attempt == 1:
            record_outbound_call("GET", "https://ghl.test/payments/orders", 503, 12.0)
            raise RuntimeError("GHL answered 503")
        record_outbound_call("GET", "https://ghl.test/payments/orders", 200, 8.0)
        record_outbound_call("PATCH", f"https://wizehire.test/v1/orders/{order_id}/sync", 200, 5.0)

    return registry


async def test_event_detail_shows_every_attempt_with_its_outbound_calls(client_factory) -> None:
    client = await client_factory(registry=flaky_registry())
    event = order_event(order_id="wh_ord_detail")
    event_id = (await post_wizehire(client, event)).json()["id"]
    await wait_for_status(client, event_id, "done")

    response = await client.get(f"/admin/events/{event_id}")
    assert response.status_code == 200
    shown = response.json()
    assert shown["id"] == event_id and shown["status"] == "done" and shown["attempts"] == 2
    assert shown["type"] == "order.created"
    assert shown["ordering_key"] == "wizehire:order:wh_ord_detail"
    assert shown["payload"] == event
    first, second = shown["attempt_log"]
    assert first["attempt"] == 1 and first["outcome"] == "retry"
    assert first["error"] == "RuntimeError: GHL answered 503"
    assert [(c["method"], c["status"]) for c in first["outbound_calls"]] == [("GET", 503)]
    assert second["attempt"] == 2 and second["outcome"] == "done" and second["error"] is None
    assert [(c["method"], c["url"], c["status"]) for c in second["outbound_calls"]] == [
        ("GET", "https://ghl.test/payments/orders", 200),
        ("PATCH", "https://wizehire.test/v1/orders/wh_ord_detail/sync", 200),
    ]
    for attempt in (first, second):
        assert attempt["worker_id"] and attempt["started_at"] <= attempt["finished_at"]


async def test_unknown_event_is_a_404_problem(client_factory, settings) -> None:
    client = await client_factory(make_settings(settings.database_url, worker="off"))
    for request in (client.get("/admin/events/987654"), client.post("/admin/events/987654/replay")):
        response = await request
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["detail"] == "no event 987654"


# --- replay ---------------------------------------------------------------------------------------


async def test_replaying_a_dead_event_runs_it_again(client_factory) -> None:
    fixed = {"mapping": False}
    registry = HandlerRegistry()

    @registry.on("wizehire", "order.created")
    async def handle(ctx: Any) -> None:
        if not fixed["mapping"]:
            raise PermanentFailure("unmapped SKU JOB-BOOST-30")

    client = await client_factory(registry=registry)
    event_id = (await post_wizehire(client, order_event())).json()["id"]
    await wait_for_status(client, event_id, "dead")

    fixed["mapping"] = True  # the operator fixes the mapping, then replays
    response = await client.post(f"/admin/events/{event_id}/replay")
    assert response.status_code == 202
    assert response.json() == {"id": event_id, "status": "queued"}
    await wait_for_status(client, event_id, "done")
    shown = (await client.get(f"/admin/events/{event_id}")).json()
    assert [a["outcome"] for a in shown["attempt_log"]] == ["dead", "done"]
    assert shown["last_error"] is None


async def test_replaying_a_done_event_runs_it_once_more(client_factory) -> None:
    runs: list[int] = []
    registry = HandlerRegistry()

    @registry.on("wizehire", "order.created")
    async def handle(ctx: Any) -> None:
        runs.append(ctx.event.attempt)

    client = await client_factory(registry=registry)
    event_id = (await post_wizehire(client, order_event())).json()["id"]
    await wait_for_status(client, event_id, "done")
    response = await client.post(f"/admin/events/{event_id}/replay")
    assert response.status_code == 202 and response.json()["status"] == "queued"

    async def ran_twice() -> bool:
        return runs == [1, 2]

    await eventually(ran_twice)
    await wait_for_status(client, event_id, "done")


async def test_replaying_a_queued_event_is_a_409_conflict(mixed_inbox) -> None:
    client, ids = mixed_inbox
    event_id = ids["wizehire_queued"]
    response = await client.post(f"/admin/events/{event_id}/replay")
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["detail"] == (f"event {event_id} is queued; only finished events replay")
    assert (await client.get(f"/admin/events/{event_id}")).json()["status"] == "queued"


async def test_replaying_a_quarantined_event_that_still_fails_says_why(mixed_inbox) -> None:
    client, ids = mixed_inbox
    event_id = ids["ghl_quarantined"]
    response = await client.post(f"/admin/events/{event_id}/replay")
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "still cannot be handled" in response.json()["detail"]
    assert "_id" in response.json()["detail"]
    assert (await client.get(f"/admin/events/{event_id}")).json()["status"] == "quarantined"


# --- ADMIN_TOKEN ----------------------------------------------------------------------------------

ADMIN_ROUTES = [
    ("GET", "/admin/events"),
    ("GET", "/admin/events/1"),
    ("POST", "/admin/events/1/replay"),
    ("GET", "/sync-status"),
]


async def test_admin_routes_require_the_bearer_token_when_it_is_set(
    client_factory, settings
) -> None:
    token = "admin-token-7c1f9e"
    client = await client_factory(
        make_settings(settings.database_url, worker="off", admin_token=token)
    )
    for method, path in ADMIN_ROUTES:
        for headers in (
            {},
            {"Authorization": "Bearer not-it"},
            {"Authorization": token},
            {"Authorization": f"Bearer {token}x"},
        ):
            response = await client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["content-type"] == PROBLEM_JSON
            assert response.headers["www-authenticate"] == "Bearer"
            assert token not in response.text
        response = await client.request(method, path, headers={"Authorization": f"Bearer {token}"})
        # Past the gate: the route itself answers (404 for the event that does not exist).
        assert response.status_code in (200, 404), (method, path, response.text)
        if response.status_code == 404:
            assert json.loads(response.text)["detail"] == "no event 1"


async def test_admin_routes_are_open_without_a_token_in_development(
    client_factory, database_url: str, engine
) -> None:
    client = await client_factory(
        make_settings(database_url, worker="off", wizesync_env="development")
    )
    for method, path in ADMIN_ROUTES:
        response = await client.request(method, path)
        assert response.status_code in (200, 404), (method, path)
