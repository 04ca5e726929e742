"""The fake Wizehire API: bearer auth, contract validation, Idempotency-Key semantics, every call
recorded, and `GET /v1/orders` paging."""

from __future__ import annotations

import pytest

from wizesync_sandbox.core import Sandbox

AUTH = {"Authorization": "Bearer wizehire-key"}
SYNC = {
    "ghl_location_id": "SandboxLocation00001",
    "ghl_order_id": "65a1b2c3d4e5f6000000abcd",
    "ghl_invoice_id": None,
    "ghl_fulfillment_id": None,
    "payment_status": "paid",
    "amount_paid": "149.00",
    "amount_refunded": "0.00",
    "currency": "USD",
    "ghl_transaction_ids": ["65a1b2c3d4e5f6000000abce"],
    "subscription": None,
    "synced_at": "2026-11-27T12:00:00Z",
}


def _write(key: str) -> dict[str, str]:
    return {**AUTH, "Idempotency-Key": key}


async def test_sync_is_recorded_with_headers_and_body(client):
    r = await client.patch("/wizehire/v1/orders/wh_ord_1/sync", headers=_write("k-1"), json=SYNC)
    assert r.status_code == 200, r.text
    assert r.json()["ghl_sync"]["payment_status"] == "paid"
    calls = (
        await client.get("/_sandbox/wizehire/calls", params={"path": "/v1/orders/wh_ord_1/sync"})
    ).json()["data"]
    (call,) = calls
    assert call["method"] == "PATCH"
    assert call["idempotency_key"] == "k-1"
    assert call["headers"]["authorization"] == "Bearer wizehire-key"
    assert call["body"] == SYNC
    assert call["response"]["status"] == 200


async def test_same_idempotency_key_replays_without_a_second_effect(client):
    body = {
        "status": "manual_action_required",
        "amount": "49.00",
        "currency": "USD",
        "ghl_transaction_id": None,
        "failure_reason": None,
        "processed_at": None,
    }
    first = await client.patch("/wizehire/v1/refunds/wh_ref_77", headers=_write("r-1"), json=body)
    second = await client.patch("/wizehire/v1/refunds/wh_ref_77", headers=_write("r-1"), json=body)
    assert second.status_code == first.status_code == 200
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    refunds = (await client.get("/_sandbox/wizehire/refunds")).json()["data"]
    assert len(refunds[0]["history"]) == 1  # applied once
    calls = (await client.get("/_sandbox/wizehire/calls")).json()["data"]
    assert [c.get("replayed", False) for c in calls] == [False, True]


async def test_same_key_with_another_request_is_refused(client):
    await client.patch("/wizehire/v1/orders/wh_ord_1/sync", headers=_write("k-2"), json=SYNC)
    other = await client.patch(
        "/wizehire/v1/orders/wh_ord_1/sync",
        headers=_write("k-2"),
        json={**SYNC, "payment_status": "refunded"},
    )
    assert other.status_code == 422
    assert other.json()["error"] == "idempotency_key_reused"
    order = (await client.get("/_sandbox/wizehire/orders/wh_ord_1")).json()
    assert order["ghl_sync"]["payment_status"] == "paid"


async def test_a_write_without_idempotency_key_is_refused(client):
    r = await client.patch("/wizehire/v1/orders/wh_ord_1/sync", headers=AUTH, json=SYNC)
    assert r.status_code == 400
    assert r.json()["error"] == "idempotency_key_required"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}]
)
async def test_missing_bearer_is_401(client, headers):
    r = await client.get("/wizehire/v1/orders", headers=headers)
    assert r.status_code == 401


async def test_configured_api_key_is_enforced(client):
    await client.patch("/_sandbox/config", json={"wizehire_api_key": "the-key"})
    assert (await client.get("/wizehire/v1/orders", headers=AUTH)).status_code == 401
    ok = await client.get("/wizehire/v1/orders", headers={"Authorization": "Bearer the-key"})
    assert ok.status_code == 200


async def test_client_credentials_token_is_accepted(client):
    await client.patch("/_sandbox/config", json={"wizehire_api_key": "the-key"})
    token = await client.post(
        "/wizehire/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "svc", "client_secret": "s"},
    )
    assert token.status_code == 200
    r = await client.get(
        "/wizehire/v1/orders", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    )
    assert r.status_code == 200


async def test_invalid_sync_body_is_422_with_field_errors(client):
    r = await client.patch(
        "/wizehire/v1/orders/wh_ord_1/sync",
        headers=_write("k-3"),
        json={
            **SYNC,
            "payment_status": "settled",
            "amount_paid": "-1",
            "currency": "usd",
            "subscription": {"status": "active"},
        },
    )
    assert r.status_code == 422
    locs = {tuple(e["loc"]) for e in r.json()["errors"]}
    assert locs == {
        ("body", "payment_status"),
        ("body", "amount_paid"),
        ("body", "currency"),
        ("body", "subscription", "ghl_subscription_id"),
    }


async def test_invalid_refund_status_is_422(client):
    r = await client.patch(
        "/wizehire/v1/refunds/wh_ref_1", headers=_write("k-4"), json={"status": "done"}
    )
    assert r.status_code == 422


async def test_orders_list_pages_with_cursor_and_filters_by_updated_since(client, sandbox: Sandbox):
    sandbox.clock.freeze()
    for n in range(3):
        await client.post("/_sandbox/wizehire/orders", json={"id": f"wh_ord_{n}", "status": "paid"})
        sandbox.clock.advance(60)
    since = sandbox.wizehire.orders["wh_ord_1"]["updated_at"]

    page1 = (await client.get("/wizehire/v1/orders", headers=AUTH, params={"limit": 2})).json()
    assert [o["id"] for o in page1["data"]] == ["wh_ord_0", "wh_ord_1"]
    page2 = (
        await client.get(
            "/wizehire/v1/orders", headers=AUTH, params={"limit": 2, "cursor": page1["next_cursor"]}
        )
    ).json()
    assert [o["id"] for o in page2["data"]] == ["wh_ord_2"]
    assert page2["next_cursor"] is None
    recent = (
        await client.get("/wizehire/v1/orders", headers=AUTH, params={"updated_since": since})
    ).json()
    assert [o["id"] for o in recent["data"]] == ["wh_ord_1", "wh_ord_2"]
    bad = await client.get("/wizehire/v1/orders", headers=AUTH, params={"cursor": "garbage!"})
    assert bad.status_code == 400


async def test_sync_of_an_order_bumps_it_into_the_updated_since_window(client, sandbox: Sandbox):
    sandbox.clock.freeze()
    await client.post("/_sandbox/wizehire/orders", json={"id": "wh_ord_9"})
    sandbox.clock.advance(60)
    cutoff = sandbox.clock.now().isoformat()
    assert (
        await client.get("/wizehire/v1/orders", headers=AUTH, params={"updated_since": cutoff})
    ).json()["data"] == []
    await client.patch("/wizehire/v1/orders/wh_ord_9/sync", headers=_write("k-9"), json=SYNC)
    listed = (
        await client.get("/wizehire/v1/orders", headers=AUTH, params={"updated_since": cutoff})
    ).json()["data"]
    assert [o["id"] for o in listed] == ["wh_ord_9"]
    assert listed[0]["ghl_order_id"] == SYNC["ghl_order_id"]


async def test_unknown_route_is_recorded_and_404(client):
    r = await client.post("/wizehire/v1/nothing", headers=AUTH, json={})
    assert r.status_code == 404
    calls = (await client.get("/_sandbox/wizehire/calls")).json()["data"]
    assert calls[-1]["path"] == "/v1/nothing"
