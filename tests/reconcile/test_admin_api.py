"""`/admin/reconciliations` and `/sync-status` `reconciliation`, shapes per the contract."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tests.conftest import _lifespan
from tests.reconcile.conftest import ReconKit
from tests.support.waiting import eventually
from wizesync.app import create_app
from wizesync.db.reconcile_models import CATEGORIES
from wizesync.reconcile.routes import CSV_COLUMNS

TOKEN = "recon-admin-token-1234"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RUN_KEYS = {"id", "status", "started_at", "finished_at", "window", "counts"}
ITEM_KEYS = {
    "category",
    "wizehire_order_id",
    "ghl_order_id",
    "ghl_location_id",
    "wizehire",
    "ghl",
    "detail",
    "healed",
}


@pytest.fixture
async def api(recon: ReconKit) -> AsyncIterator[httpx.AsyncClient]:
    settings = recon.flow.settings.model_copy(update={"worker": "off"})
    settings = settings.model_copy(update={"admin_token": SecretStr(TOKEN)})
    app = create_app(settings)
    async with _lifespan(app):
        app.state.reconciler = recon.reconciler()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", headers=AUTH
        ) as client:
            yield client


async def _finished(api: httpx.AsyncClient, run_id: int) -> dict[str, Any]:
    async def finished() -> dict[str, Any] | None:
        body = (await api.get(f"/admin/reconciliations/{run_id}")).json()
        return body if body["status"] != "running" else None

    return await eventually(finished, what=f"run {run_id} to finish")


async def _planted(recon: ReconKit) -> tuple[dict[str, Any], dict[str, Any]]:
    synced = await recon.synced()
    never_sent = recon.new_order()
    recon.seed_wizehire(never_sent)
    return synced, never_sent


async def test_start_a_run_and_read_it_back(recon: ReconKit, api: httpx.AsyncClient) -> None:
    synced, never_sent = await _planted(recon)
    window = recon.window()
    started = await api.post(
        "/admin/reconciliations",
        json={"since": window.since.isoformat(), "until": window.until.isoformat(), "heal": False},
    )
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "running"
    run_id = started.json()["id"]
    body = await _finished(api, run_id)
    assert body["status"] == "done"
    assert RUN_KEYS | {"items", "next_cursor"} <= set(body)
    assert body["window"]["since"].endswith("Z") and body["finished_at"].endswith("Z")
    assert list(body["counts"]) == list(CATEGORIES)
    assert body["counts"]["matched"] == 1 and body["counts"]["missing_in_ghl"] == 1
    assert body["next_cursor"] is None
    items = {i["wizehire_order_id"]: i for i in body["items"]}
    assert set(items) == {synced["id"], never_sent["id"]}
    for item in body["items"]:
        assert set(item) == ITEM_KEYS
    assert items[never_sent["id"]]["ghl"] is None
    assert items[never_sent["id"]]["wizehire"] == {
        "amount": "149.00",
        "currency": "USD",
        "status": "paid",
        "payment_status": None,
        "amount_refunded": "0.00",
    }
    assert set(items[synced["id"]]["ghl"]) == {
        "amount",
        "currency",
        "payment_status",
        "amount_refunded",
        "fulfilled",
    }

    # Paging: one item per page, following next_cursor; a category filter.
    first = (await api.get(f"/admin/reconciliations/{run_id}", params={"limit": 1})).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = (
        await api.get(
            f"/admin/reconciliations/{run_id}", params={"limit": 1, "cursor": first["next_cursor"]}
        )
    ).json()
    assert second["next_cursor"] is None
    assert {first["items"][0]["wizehire_order_id"], second["items"][0]["wizehire_order_id"]} == set(
        items
    )
    only = (
        await api.get(f"/admin/reconciliations/{run_id}", params={"category": "missing_in_ghl"})
    ).json()
    assert [i["wizehire_order_id"] for i in only["items"]] == [never_sent["id"]]

    # The list, newest first, without items.
    second_run = (await api.post("/admin/reconciliations", json={"heal": False})).json()["id"]
    await _finished(api, second_run)
    listed = (await api.get("/admin/reconciliations")).json()["data"]
    assert [r["id"] for r in listed] == [second_run, run_id]
    assert all("items" not in r and RUN_KEYS <= set(r) for r in listed)

    # CSV: a header and one row per item.
    response = await api.get(f"/admin/reconciliations/{run_id}.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert {r["wizehire_order_id"]: r["category"] for r in rows} == {
        synced["id"]: "matched",
        never_sent["id"]: "missing_in_ghl",
    }
    missing = next(r for r in rows if r["category"] == "missing_in_ghl")
    assert missing["wizehire_amount"] == "149.00" and missing["ghl_amount"] == ""

    # /sync-status: the last finished run.
    status = (await api.get("/sync-status")).json()["reconciliation"]
    assert status["id"] == second_run
    assert set(status) == {"id", "finished_at", "window", "counts"}


async def test_errors_are_problems(recon: ReconKit, api: httpx.AsyncClient) -> None:
    bad = await api.post(
        "/admin/reconciliations",
        json={"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"},
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"][0]["loc"] == ["body", "since"]
    not_a_time = await api.post("/admin/reconciliations", json={"since": "yesterday"})
    assert not_a_time.status_code == 422
    for path in (
        "/admin/reconciliations/999999",
        "/admin/reconciliations/abc",
        "/admin/reconciliations/999999.csv",
    ):
        missing = await api.get(path)
        assert missing.status_code == 404, path
        assert missing.headers["content-type"] == "application/problem+json"
    run_id = (await api.post("/admin/reconciliations", json={"heal": False})).json()["id"]
    await _finished(api, run_id)
    for params in (
        {"limit": 10001},
        {"limit": 0},
        {"category": "nope"},
        {"cursor": "not-a-cursor"},
    ):
        response = await api.get(f"/admin/reconciliations/{run_id}", params=params)
        assert response.status_code == 422, params
    anonymous = await api.get("/admin/reconciliations", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert (await api.get("/sync-status")).json()["reconciliation"]["id"] == run_id
