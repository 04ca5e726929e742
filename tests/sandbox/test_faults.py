"""Fault injection: forced errors per path, errors after the work was done, hangs longer than a
client timeout, error rates, and latency that changes nothing but the timing."""

from __future__ import annotations

import asyncio

import pytest

from tests.sandbox.kit import (
    LOC,
    PIT,
    Q,
    checkout,
    create_invoice,
    invoice_body,
    upsert_contact,
)
from wizesync_sandbox.defaults import BOOST_PRICE_ID


async def _fault(client, **rule):
    r = await client.post("/_sandbox/faults", json=rule)
    assert r.status_code == 201, r.text
    return r.json()


async def test_forced_503_on_a_path_pattern_for_a_number_of_times(client):
    await _fault(client, path="/ghl/payments/orders*", status=503, times=2)
    codes = [
        (await client.get("/ghl/payments/orders", headers=PIT, params=Q)).status_code
        for _ in range(3)
    ]
    assert codes == [503, 503, 200]
    other = await client.get("/ghl/payments/transactions", headers=PIT, params=Q)
    assert other.status_code == 200


async def test_fault_answer_is_shaped_like_the_fakes_errors(client):
    await _fault(client, path="/ghl/*", status=500, times=1)
    await _fault(client, path="/wizehire/*", status=500, times=1)
    ghl = await client.get("/ghl/payments/orders", headers=PIT, params=Q)
    wizehire = await client.get("/wizehire/v1/orders", headers={"Authorization": "Bearer k"})
    assert ghl.json()["statusCode"] == 500
    assert wizehire.json()["error"] == "internal_server_error"


async def test_method_filter_and_removal(client):
    rule = await _fault(client, path="/ghl/payments/orders", method="POST", status=500)
    assert (await client.get("/ghl/payments/orders", headers=PIT, params=Q)).status_code == 200
    await client.delete(f"/_sandbox/faults/{rule['id']}")
    assert (await client.get("/_sandbox/faults")).json()["rules"] == []


async def test_error_after_the_work_leaves_the_effect_in_place(client):
    """A create that GHL performed but answered 500 for: the client must look before retrying."""
    bought = await checkout(client)
    order_id = bought["order"]["_id"]
    path = f"/ghl/payments/orders/{order_id}/fulfillments"
    await _fault(client, path=path, method="POST", status=500, phase="after", times=1)
    body = {
        "altId": LOC,
        "altType": "location",
        "notifyCustomer": False,
        "trackings": [],
        "items": [{"priceId": BOOST_PRICE_ID, "qty": 1}],
    }
    failed = await client.post(path, headers=PIT, json=body)
    assert failed.status_code == 500
    assert failed.headers["x-ratelimit-remaining"] == "99"  # the work was counted
    listed = await client.get(path, headers=PIT, params=Q)
    assert len(listed.json()["data"]) == 1


async def test_error_before_the_work_changes_nothing(client):
    contact = await upsert_contact(client)
    await _fault(client, path="/ghl/invoices*", method="POST", status=503, times=1)
    r = await client.post("/ghl/invoices/", headers=PIT, json=invoice_body(contact))
    assert r.status_code == 503
    listed = await client.get("/ghl/invoices/", headers=PIT, params={**Q, "limit": 10, "offset": 0})
    assert listed.json()["total"] == 0
    assert (await create_invoice(client, contact))["status"] == "draft"


async def test_timeout_fault_hangs_past_the_clients_patience(client):
    await _fault(client, path="/ghl/payments/orders", timeout=True, hang_seconds=60, times=1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.get("/ghl/payments/orders", headers=PIT, params=Q), 0.5)
    assert (await client.get("/ghl/payments/orders", headers=PIT, params=Q)).status_code == 200


async def test_error_rate_hits_some_requests_reproducibly(client):
    await client.patch("/_sandbox/config", json={"fault_seed": 7})
    await client.post("/_sandbox/reset", json={"seed": True})  # reseeds the fault RNG

    async def run() -> list[int]:
        await _fault(client, path="/ghl/payments/*", status=500, rate=0.3)
        codes = [
            (await client.get("/ghl/payments/orders", headers=PIT, params=Q)).status_code
            for _ in range(60)
        ]
        await client.post("/_sandbox/reset", json={"seed": True})
        return codes

    first, second = await run(), await run()
    assert set(first) == {200, 500}
    assert first == second  # same seed, same faults


async def test_latency_only_still_answers_normally(client):
    await _fault(client, path="/ghl/payments/orders", latency_ms=50, times=1)
    r = await client.get("/ghl/payments/orders", headers=PIT, params=Q)
    assert r.status_code == 200
    applied = (await client.get("/_sandbox/faults")).json()["applied"]
    assert [a["path"] for a in applied] == ["/ghl/payments/orders"]


async def test_a_rule_that_does_nothing_is_refused(client):
    r = await client.post("/_sandbox/faults", json={"path": "/ghl/*"})
    assert r.status_code == 422


async def test_forced_429_carries_rate_limit_headers(client):
    await _fault(client, path="/ghl/*", status=429, times=1)
    r = await client.get("/ghl/payments/orders", headers=PIT, params=Q)
    assert r.status_code == 429
    assert r.headers["x-ratelimit-remaining"] == "0"
    assert r.headers["x-ratelimit-interval-milliseconds"] == "10000"
