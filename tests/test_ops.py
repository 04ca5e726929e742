"""Operators' endpoints: /health, /ready, /sync-status, /metrics, and problem+json errors."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.db_outage import PostgresOutage, SqliteOutage
from tests.support.ops_kit import (
    CUSTOMER_EMAIL,
    PROBLEM_JSON,
    metric_samples,
    metric_value,
    order_event,
    post_wizehire,
)
from tests.support.signing import wizehire_request
from tests.support.waiting import eventually, wait_for_status
from wizesync.inbox.context import PermanentFailure
from wizesync.inbox.registry import HandlerRegistry


def ok_and_dying_registry() -> HandlerRegistry:
    """order.created succeeds; order.updated dies, its error's 2nd line quoting customer data."""
    registry = HandlerRegistry()

    @registry.on("wizehire", "order.created")
    async def _ok(ctx: Any) -> None:
        return None

    @registry.on("wizehire", "order.updated")
    async def _dies(ctx: Any) -> None:
        email = ctx.event.payload["data"]["order"]["customer"]["email"]
        raise PermanentFailure(f"GHL order not found for this order\ncustomer was {email}")

    return registry


# --- /health --------------------------------------------------------------------------------------


async def test_health_answers_ok_while_the_process_runs(client_factory, settings) -> None:
    client = await client_factory(make_settings(settings.database_url, worker="off"))
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


# --- /ready ---------------------------------------------------------------------------------------


async def test_ready_is_200_with_a_running_inprocess_worker(client_factory) -> None:
    client = await client_factory()

    async def ready() -> httpx.Response | None:
        response = await client.get("/ready")
        return response if response.status_code == 200 else None

    body = (await eventually(ready)).json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"]["current"] == body["checks"]["migrations"]["head"]
    assert body["checks"]["worker"]["last_heartbeat_age_seconds"] is not None


async def test_ready_is_503_without_a_fresh_worker_heartbeat(client_factory, settings) -> None:
    client = await client_factory(make_settings(settings.database_url, worker="off"))
    response = await client.get("/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == 503 and body["title"] == "Service Unavailable"
    assert body["reasons"] == [
        "no worker has a fresh heartbeat (WORKER=off: start `wizesync worker`)"
    ]
    assert body["checks"]["database"] == "ok"


async def test_ready_turns_200_once_a_separate_worker_beats(client_factory, settings) -> None:
    """WORKER=off on the API; a worker elsewhere (here: another app's) makes it ready."""
    api = await client_factory(make_settings(settings.database_url, worker="off"))
    assert (await api.get("/ready")).status_code == 503
    await client_factory(make_settings(settings.database_url))  # runs the in-process worker

    async def ready() -> bool:
        return (await api.get("/ready")).status_code == 200

    await eventually(ready)


async def test_ready_is_503_on_a_database_never_migrated(
    client_factory, tmp_path: Path, is_postgres: bool
) -> None:
    if not is_postgres:
        url, cleanup = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}", None
    else:
        url, reason = await asyncio.to_thread(create_postgres_database)
        if url is None:
            pytest.skip(reason or "PostgreSQL not available")
        cleanup = url
    try:
        client = await client_factory(make_settings(url, worker="off"))
        response = await client.get("/ready")
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM_JSON
        body = response.json()
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["migrations"]["current"] is None
        assert any(
            r.startswith("migrations are not at head") and "wizesync migrate" in r
            for r in body["reasons"]
        ), body
    finally:
        if cleanup:
            await asyncio.to_thread(drop_postgres_database, cleanup)


async def test_ready_follows_the_database_going_away_and_coming_back(
    client_factory, database_url: str, is_postgres: bool, tmp_path: Path
) -> None:
    """PostgreSQL through a TCP proxy this test owns: ready, proxy down -> 503, up -> ready.
    SQLite: a file that cannot be opened yet (503), then created and migrated (ready)."""
    outage = PostgresOutage(database_url) if is_postgres else SqliteOutage(tmp_path)
    if isinstance(outage, PostgresOutage):
        await outage.start_up()
    client = await client_factory(make_settings(outage.url))

    async def status_is(code: int) -> httpx.Response | None:
        response = await client.get("/ready")
        return response if response.status_code == code else None

    try:
        if isinstance(outage, PostgresOutage):
            await eventually(lambda: status_is(200))
            await outage.down()
        down = await eventually(lambda: status_is(503))
        assert down.headers["content-type"] == PROBLEM_JSON
        assert down.json()["reasons"] == ["database is not answering"]
        assert down.json()["checks"] == {"database": "down"}
        # Other endpoints that need the database say so too, with Retry-After.
        response = await client.get("/admin/events")
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["retry-after"]
        await outage.up()
        await eventually(lambda: status_is(200))
    finally:
        await outage.close()


# --- /sync-status ---------------------------------------------------------------------------------


async def test_sync_status_reports_queue_flows_and_dead_letters(client_factory) -> None:
    client = await client_factory(registry=ok_and_dying_registry())
    done_ids = [(await post_wizehire(client, order_event())).json()["id"] for _ in range(2)]
    dead_id = (await post_wizehire(client, order_event("order.updated"))).json()["id"]

    for event_id in done_ids:
        await wait_for_status(client, event_id, "done")
    await wait_for_status(client, dead_id, "dead")
    response = await client.get("/sync-status")
    assert response.status_code == 200
    body = response.json()

    assert body["queue"]["counts"] == {
        "queued": 0,
        "running": 0,
        "retry": 0,
        "done": 2,
        "dead": 1,
        "ignored": 0,
        "quarantined": 0,
    }
    assert body["queue"]["oldest_queued_age_seconds"] == 0

    created = body["flows"]["wizehire:order.created"]
    assert created["successes_24h"] == 2 and created["failures_24h"] == 0
    # An aware timestamp on both databases (SQLite's max() hands back naive text).
    assert datetime.fromisoformat(created["last_success_at"]).tzinfo is not None
    updated = body["flows"]["wizehire:order.updated"]
    assert updated["successes_24h"] == 0 and updated["failures_24h"] == 1
    assert updated["last_success_at"] is None

    dead = body["dead_letters"]
    assert dead["count"] == 1
    [letter] = dead["newest"]
    assert letter["id"] == dead_id and letter["type"] == "order.updated"
    assert letter["source"] == "wizehire"
    assert letter["error"] == "GHL order not found for this order"
    assert "payload" not in letter
    # No customer data anywhere in the report (the error's second line quoted the email).
    assert CUSTOMER_EMAIL not in response.text
    assert "Lee Plumbing" not in response.text


async def test_sync_status_counts_queued_events_and_their_age(client_factory, settings) -> None:
    client = await client_factory(make_settings(settings.database_url, worker="off"))
    for _ in range(3):
        assert (await post_wizehire(client, order_event())).status_code == 202

    async def aged() -> dict[str, Any] | None:
        queue = (await client.get("/sync-status")).json()["queue"]
        return queue if queue["oldest_queued_age_seconds"] > 0 else None

    queue = await eventually(aged)
    assert queue["counts"]["queued"] == 3
    assert sum(queue["counts"].values()) == 3


async def test_dead_letters_list_the_twenty_newest(client_factory) -> None:
    client = await client_factory(registry=ok_and_dying_registry())
    ids = [
        (await post_wizehire(client, order_event("order.updated"))).json()["id"] for _ in range(22)
    ]

    for event_id in ids:
        await wait_for_status(client, event_id, "dead")
    dead = (await client.get("/sync-status")).json()["dead_letters"]
    assert dead["count"] == 22
    assert len(dead["newest"]) == 20
    listed = [letter["id"] for letter in dead["newest"]]
    assert len(set(listed)) == 20 and set(listed) <= set(ids)
    died = [datetime.fromisoformat(letter["died_at"]) for letter in dead["newest"]]
    assert died == sorted(died, reverse=True)
    # The two left out died no later than the oldest listed.
    left_out = set(ids) - set(listed)
    for event_id in left_out:
        shown = (await client.get(f"/admin/events/{event_id}")).json()
        assert datetime.fromisoformat(shown["handled_at"]) <= died[-1]


async def test_sync_status_requires_the_admin_token_when_set(client_factory, settings) -> None:
    token = "ops-token-1b7e0c5d"
    client = await client_factory(
        make_settings(settings.database_url, worker="off", admin_token=token)
    )
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {token}"}):
        response = await client.get("/sync-status", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["status"] == 401
        assert token not in response.text
    response = await client.get("/sync-status", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert set(response.json()) >= {"queue", "flows", "dead_letters"}


async def test_sync_status_is_open_in_development_without_a_token(
    client_factory, database_url: str, engine
) -> None:
    settings = make_settings(database_url, wizesync_env="development", worker="off")
    assert settings.admin_token is None
    client = await client_factory(settings)
    assert (await client.get("/sync-status")).status_code == 200


# --- /metrics -------------------------------------------------------------------------------------


async def test_metrics_count_webhooks_and_read_the_queue_from_the_database(
    client_factory, settings
) -> None:
    client = await client_factory(make_settings(settings.database_url, worker="off"))
    before = (await client.get("/metrics")).text
    for _ in range(3):
        await post_wizehire(client, order_event())
    body, headers = wizehire_request(order_event())
    headers["webhook-signature"] = "v1,AAAA"
    assert (
        await client.post("/webhooks/wizehire", content=body, headers=headers)
    ).status_code == 401

    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE wizesync_webhooks_total counter" in text
    assert "# TYPE wizesync_queue_events gauge" in text
    accepted = dict(source="wizehire", outcome="accepted")
    assert (
        metric_value(text, "wizesync_webhooks_total", **accepted)
        - metric_value(before, "wizesync_webhooks_total", **accepted)
        == 3
    )
    rejected = dict(source="wizehire", outcome="rejected", reason="bad_signature")
    assert (
        metric_value(text, "wizesync_webhooks_total", **rejected)
        - metric_value(before, "wizesync_webhooks_total", **rejected)
        == 1
    )
    # The gauge is the database's truth at scrape time, for every status.
    assert metric_value(text, "wizesync_queue_events", status="queued") == 3
    assert metric_value(text, "wizesync_queue_events", status="done") == 0
    assert {s.labels["status"] for s in metric_samples(text, "wizesync_queue_events")} >= {
        "queued",
        "running",
        "retry",
        "done",
        "dead",
        "ignored",
        "quarantined",
    }


async def test_metrics_show_pickup_and_handler_latency_after_an_event_ran(client_factory) -> None:
    client = await client_factory(registry=ok_and_dying_registry())
    before = (await client.get("/metrics")).text
    event_id = (await post_wizehire(client, order_event())).json()["id"]

    await wait_for_status(client, event_id, "done")
    text = (await client.get("/metrics")).text

    def grew(metric: str, **labels: str) -> float:
        return metric_value(text, metric, **labels) - metric_value(before, metric, **labels)

    assert grew("wizesync_event_pickup_seconds_count", source="wizehire") == 1
    handler = dict(source="wizehire", type="order.created", outcome="done")
    assert grew("wizesync_event_handler_seconds_count", **handler) == 1
    assert grew("wizesync_event_attempts_total", **handler) == 1
    assert metric_value(text, "wizesync_queue_events", status="done") == 1


# --- errors are problem+json everywhere -----------------------------------------------------------


async def test_unknown_route_is_a_404_problem(client_factory, settings) -> None:
    client = await client_factory(make_settings(settings.database_url, worker="off"))
    response = await client.get("/no/such/route")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["type"] == "about:blank" and body["title"] == "Not Found"
    assert body["status"] == 404 and body["detail"]


async def test_wrong_method_is_a_405_problem(client_factory, settings) -> None:
    client = await client_factory(make_settings(settings.database_url, worker="off"))
    response = await client.get("/webhooks/wizehire")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["allow"] == "POST"
    assert response.json()["title"] == "Method Not Allowed"


async def test_invalid_parameters_are_a_422_problem_with_field_errors(
    client_factory, settings
) -> None:
    client = await client_factory(make_settings(settings.database_url, worker="off"))
    response = await client.get("/admin/events", params={"limit": 0, "status": "sleeping"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == 422 and body["title"] == "Unprocessable Content"
    locs = {error["loc"] for error in body["errors"]}
    assert locs == {"query.limit", "query.status"}
    assert all(isinstance(error["msg"], str) and error["msg"] for error in body["errors"])

    response = await client.get("/admin/events/not-a-number")
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["errors"]] == ["path.event_id"]


async def test_an_unexpected_error_is_a_500_problem_without_a_stack_trace(settings) -> None:
    from wizesync.app import create_app

    app = create_app(make_settings(settings.database_url, worker="off"))

    @app.get("/explode")
    async def explode() -> None:
        raise RuntimeError("internal detail whsec_c2VjcmV0c2VjcmV0")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        response = await client.get("/explode")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json() == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "an unexpected error occurred",
    }
    assert "Traceback" not in response.text and "whsec_" not in response.text
