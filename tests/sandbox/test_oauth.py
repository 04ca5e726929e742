"""The fake GHL's OAuth server: codes, rotating single-use refresh tokens, expiry, scopes, agency
location tokens, paused locations."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from tests.sandbox.kit import LOC, Q, bearer
from wizesync_sandbox.core import Sandbox

FORM = {"client_id": "app-client", "client_secret": "app-secret"}


async def _code(client: httpx.AsyncClient, **body: object) -> str:
    r = await client.post("/_sandbox/ghl/oauth/codes", json={"location_id": LOC, **body})
    assert r.status_code == 201, r.text
    return r.json()["code"]


async def _token(client: httpx.AsyncClient, **form: str) -> httpx.Response:
    return await client.post("/ghl/oauth/token", data={**FORM, **form})


async def _installed(client: httpx.AsyncClient, **code_body: object) -> dict:
    code = await _code(client, **code_body)
    r = await _token(
        client,
        grant_type="authorization_code",
        code=code,
        user_type=str(code_body.get("user_type", "Location")),
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_code_exchange_answers_a_token_pair_shaped_like_ghls(client):
    pair = await _installed(client)
    assert pair["token_type"] == "Bearer"
    assert pair["expires_in"] == 86399
    assert pair["userType"] == "Location"
    assert pair["locationId"] == LOC
    assert pair["access_token"] != pair["refresh_token"]
    assert "payments/orders.readonly" in pair["scope"].split()


async def test_authorization_code_works_once(client):
    code = await _code(client)
    first = await _token(client, grant_type="authorization_code", code=code)
    again = await _token(client, grant_type="authorization_code", code=code)
    assert first.status_code == 200
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_refresh_rotates_and_a_reused_refresh_token_is_rejected(client):
    pair = await _installed(client)
    rotated = await _token(client, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["refresh_token"] != pair["refresh_token"]
    assert new["access_token"] != pair["access_token"]

    reused = await _token(client, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert reused.status_code == 400
    body = reused.json()
    assert body["error"] == "invalid_grant"
    assert body["error_description"] == "Invalid grant: refresh token is invalid"
    assert body["message"] == "Invalid grant: refresh token is invalid"

    # The new refresh token still works exactly once.
    assert (
        await _token(client, grant_type="refresh_token", refresh_token=new["refresh_token"])
    ).status_code == 200


async def test_reused_refresh_token_can_answer_401_when_configured(client):
    await client.patch("/_sandbox/config", json={"invalid_grant_status": 401})
    pair = await _installed(client)
    await _token(client, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    reused = await _token(client, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert reused.status_code == 401
    assert reused.json()["error"] == "invalid_grant"


async def test_new_access_token_works_and_expired_one_is_refused(client, sandbox: Sandbox):
    pair = await _installed(client)
    ok = await client.get("/ghl/payments/orders", params=Q, headers=bearer(pair["access_token"]))
    assert ok.status_code == 200, ok.text

    sandbox.clock.advance(86_400)  # past expires_in
    expired = await client.get(
        "/ghl/payments/orders", params=Q, headers=bearer(pair["access_token"])
    )
    assert expired.status_code == 401
    assert expired.json()["message"] == "Invalid token: access token is invalid"

    refreshed = await _token(
        client, grant_type="refresh_token", refresh_token=pair["refresh_token"]
    )
    again = await client.get(
        "/ghl/payments/orders", params=Q, headers=bearer(refreshed.json()["access_token"])
    )
    assert again.status_code == 200


async def test_admin_expiry_makes_the_next_call_401(client):
    pair = await _installed(client)
    await client.post("/_sandbox/ghl/oauth/expire", params={"location_id": LOC})
    r = await client.get("/ghl/payments/orders", params=Q, headers=bearer(pair["access_token"]))
    assert r.status_code == 401


async def test_token_without_the_scope_is_refused_with_the_scope_message(client):
    pair = await _installed(client, scopes=["payments/orders.readonly"])
    allowed = await client.get(
        "/ghl/payments/orders", params=Q, headers=bearer(pair["access_token"])
    )
    refused = await client.get(
        "/ghl/payments/transactions", params=Q, headers=bearer(pair["access_token"])
    )
    assert allowed.status_code == 200
    assert refused.status_code == 401
    assert refused.json()["message"] == "The token is not authorized for this scope."


async def test_location_token_cannot_read_another_location(client):
    other = (await client.post("/_sandbox/ghl/locations", json={"pit": False})).json()["id"]
    pair = await _installed(client)
    r = await client.get(
        "/ghl/payments/orders",
        params={"altId": other, "altType": "location"},
        headers=bearer(pair["access_token"]),
    )
    assert r.status_code == 403


async def test_agency_token_mints_location_tokens_for_approved_locations(client):
    second = (
        await client.post(
            "/_sandbox/ghl/locations", json={"company_id": "SandboxAgency0000001", "pit": False}
        )
    ).json()["id"]
    agency = await _installed(client, user_type="Company", company_id="SandboxAgency0000001")
    assert agency["userType"] == "Company"
    assert set(agency["approvedLocations"]) == {LOC, second}

    # An agency token is not a location token: payments refuses it.
    direct = await client.get(
        "/ghl/payments/orders", params=Q, headers=bearer(agency["access_token"])
    )
    assert direct.status_code == 401

    r = await client.post(
        "/ghl/oauth/locationToken",
        headers=bearer(agency["access_token"]),
        data={"companyId": "SandboxAgency0000001", "locationId": second},
    )
    assert r.status_code == 200, r.text
    location_token = r.json()
    assert location_token["locationId"] == second
    orders = await client.get(
        "/ghl/payments/orders",
        params={"altId": second, "altType": "location"},
        headers=bearer(location_token["access_token"]),
    )
    assert orders.status_code == 200

    stranger = await client.post(
        "/ghl/oauth/locationToken",
        headers=bearer(agency["access_token"]),
        data={"companyId": "SandboxAgency0000001", "locationId": "NotApprovedLocation1"},
    )
    assert stranger.status_code == 400


async def test_paused_location_refuses_refresh_but_keeps_the_refresh_token(client):
    pair = await _installed(client)
    await client.patch(f"/_sandbox/ghl/locations/{LOC}", json={"active": False})
    paused = await _token(client, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert paused.status_code == 400
    assert paused.json()["message"] == "Location is not active"

    await client.patch(f"/_sandbox/ghl/locations/{LOC}", json={"active": True})
    resumed = await _token(client, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert resumed.status_code == 200


async def test_wrong_client_credentials_are_refused_when_configured(client):
    await client.patch(
        "/_sandbox/config", json={"ghl_client_id": "app-client", "ghl_client_secret": "right"}
    )
    code = await _code(client)
    r = await client.post(
        "/ghl/oauth/token",
        data={
            "client_id": "app-client",
            "client_secret": "wrong",
            "grant_type": "authorization_code",
            "code": code,
        },
    )
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"


async def test_install_page_redirects_with_code_and_state_and_records_install(client, sandbox):
    r = await client.get(
        "/ghl/oauth/chooselocation",
        params={
            "response_type": "code",
            "client_id": "app-client",
            "redirect_uri": "https://service.test/oauth/ghl/callback",
            "state": "st-123",
            "scope": "payments/orders.readonly invoices.write",
        },
    )
    assert r.status_code == 302
    target = urlsplit(r.headers["location"])
    params = parse_qs(target.query)
    assert target.path == "/oauth/ghl/callback"
    assert params["state"] == ["st-123"]
    pair = (
        await _token(
            client,
            grant_type="authorization_code",
            code=params["code"][0],
            redirect_uri="https://service.test/oauth/ghl/callback",
        )
    ).json()
    assert pair["scope"].split() == ["payments/orders.readonly", "invoices.write"]
    installs = sandbox.outbox.listing(type_="INSTALL")
    assert [d.payload["locationId"] for d in installs] == [LOC]


async def test_token_endpoint_calls_are_counted_for_inspection(client):
    pair = await _installed(client)
    await _token(client, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    await _token(client, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    calls = (await client.get("/_sandbox/state")).json()["oauth"]["calls"]
    outcomes = [(c["grant_type"], c["outcome"]) for c in calls]
    assert outcomes == [
        ("authorization_code", "ok"),
        ("refresh_token", "ok"),
        ("refresh_token", "invalid_grant"),
    ]
