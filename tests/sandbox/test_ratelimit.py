"""Rate limits: the X-RateLimit-* headers on every answer and real 429s beyond the budget of a
location (100 per 10 s by default). The sandbox clock is frozen so the window cannot slide away
while the test runs, however slow the machine."""

from __future__ import annotations

import pytest

from tests.sandbox.kit import LOC, PIT, Q
from wizesync_sandbox.core import Sandbox

HEADERS = (
    "x-ratelimit-max",
    "x-ratelimit-remaining",
    "x-ratelimit-interval-milliseconds",
    "x-ratelimit-limit-daily",
    "x-ratelimit-daily-remaining",
)


@pytest.fixture(autouse=True)
def frozen(sandbox: Sandbox) -> None:
    sandbox.clock.freeze()


async def _orders(client, location: str = LOC):
    return await client.get(
        "/ghl/payments/orders", headers=PIT, params={"altId": location, "altType": "location"}
    )


async def test_every_answer_carries_the_rate_limit_headers(client):
    ok = await _orders(client)
    unauthorised = await client.get(
        "/ghl/payments/orders", params=Q, headers={"Version": "2021-07-28"}
    )
    unknown_route = await client.get("/ghl/no/such/route", headers=PIT)
    token = await client.post("/ghl/oauth/token", data={"grant_type": "refresh_token"})
    for response in (ok, unauthorised, unknown_route, token):
        assert all(h in response.headers for h in HEADERS), (response.status_code, response.headers)
    assert ok.headers["x-ratelimit-max"] == "100"
    assert ok.headers["x-ratelimit-interval-milliseconds"] == "10000"
    assert ok.headers["x-ratelimit-limit-daily"] == "200000"
    assert ok.headers["x-ratelimit-remaining"] == "99"
    assert ok.headers["x-ratelimit-daily-remaining"] == "199999"


async def test_the_101st_request_in_ten_seconds_is_429_with_headers(client, sandbox: Sandbox):
    remaining = []
    for _ in range(100):
        r = await _orders(client)
        assert r.status_code == 200
        remaining.append(int(r.headers["x-ratelimit-remaining"]))
    assert remaining == list(range(99, -1, -1))

    refused = await _orders(client)
    assert refused.status_code == 429
    assert refused.json()["statusCode"] == 429
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.headers["x-ratelimit-max"] == "100"
    assert "retry-after" not in refused.headers  # off by default: GHL's is unconfirmed

    sandbox.clock.advance(10.001)  # the window slides past the first requests
    assert (await _orders(client)).status_code == 200


async def test_window_slides_rather_than_resets(client, sandbox: Sandbox):
    await client.patch("/_sandbox/config", json={"ghl_rate_limit_max": 4})
    for _ in range(2):
        await _orders(client)
    sandbox.clock.advance(6)
    for _ in range(2):
        await _orders(client)
    sandbox.clock.advance(5)  # the first two fell out of the window, the last two did not
    statuses = [(await _orders(client)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_budgets_are_per_location(client):
    await client.patch("/_sandbox/config", json={"ghl_rate_limit_max": 3})
    other = (await client.post("/_sandbox/ghl/locations", json={})).json()["id"]
    for _ in range(3):
        await _orders(client)
    assert (await _orders(client)).status_code == 429
    assert (await _orders(client, other)).status_code == 200


async def test_retry_after_is_sent_when_enabled(client):
    await client.patch("/_sandbox/config", json={"ghl_rate_limit_max": 1, "ghl_retry_after": True})
    await _orders(client)
    refused = await _orders(client)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 10


async def test_daily_budget_is_enforced(client):
    await client.patch("/_sandbox/config", json={"ghl_daily_limit": 2})
    codes = [(await _orders(client)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
