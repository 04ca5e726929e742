"""Installing the app: `GET /oauth/ghl/install` (one-time state) and `GET /oauth/ghl/callback`
(code exchange, encrypted storage per location, agency installs), plus `wizesync ghl
install-url`. GHL's token endpoints are mocked with respx."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from tests.conftest import make_settings
from tests.ghl.kit import (
    CLIENT_ID,
    CLIENT_SECRET,
    COMPANY,
    KEY_OLD,
    LOCATION,
    LOCATION_2,
    REDIRECT_URI,
    installation,
    oauth_settings,
)
from wizesync.db.base import utcnow
from wizesync.db.ghl_models import GhlOAuthState
from wizesync.ghl.crypto import TokenCipher
from wizesync.ghl.oauth import SCOPES

API = "https://ghl.test"
AUTHORIZE = "https://marketplace.test/v2/oauth/chooselocation"


ADMIN = "oauth-routes-admin-token-0123456789abcdef"


@pytest.fixture
async def client(client_factory, database_url):  # type: ignore[no-untyped-def]
    client = await client_factory(
        oauth_settings(database_url, API, worker="off", admin_token=ADMIN)
    )
    client.headers["Authorization"] = f"Bearer {ADMIN}"
    # The redirect URI is https, so the install cookie is Secure: the browser's side is https.
    client.base_url = httpx.URL("https://test")
    return client


async def start_install(client: httpx.AsyncClient, user_type: str = "Location") -> str:
    response = await client.get("/oauth/ghl/install", params={"user_type": user_type})
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["location"]).query)["state"][0]


def location_grant(access: str = "at_loc_plain", refresh: str = "rt_loc_plain") -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": 86399,
            "refresh_token": refresh,
            "scope": "payments/orders.readonly invoices.write",
            "userType": "Location",
            "locationId": LOCATION,
            "companyId": COMPANY,
            "userId": "user0000000000000000001",
        },
    )


async def test_install_redirects_to_ghl_with_a_stored_one_time_state(client, sessionmaker):
    response = await client.get("/oauth/ghl/install")
    assert response.status_code == 302
    target = urlsplit(response.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == AUTHORIZE
    query = parse_qs(target.query)
    assert query["response_type"] == ["code"]
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [REDIRECT_URI]
    assert query["scope"][0].split(" ") == list(SCOPES)
    assert "%20" in target.query  # space-separated scopes, not '+'
    state = query["state"][0]
    assert len(state) >= 32
    assert response.headers["cache-control"] == "no-store"
    async with sessionmaker() as session:
        rows = (await session.execute(select(GhlOAuthState))).scalars().all()
    assert [r.state_hash for r in rows] == [hashlib.sha256(state.encode()).hexdigest()]
    assert rows[0].expires_at - rows[0].created_at == timedelta(minutes=10)
    assert state not in repr([(r.state_hash, r.user_type) for r in rows])  # only its hash

    again = parse_qs(urlsplit((await client.get("/oauth/ghl/install")).headers["location"]).query)[
        "state"
    ][0]
    assert again != state


async def test_install_without_oauth_configured_answers_a_problem(client_factory, database_url):
    client = await client_factory(make_settings(database_url, worker="off", admin_token=ADMIN))
    response = await client.get("/oauth/ghl/install", headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "GHL_CLIENT_ID" in response.json()["detail"]


@respx.mock
async def test_location_install_stores_the_pair_encrypted(client, sessionmaker):
    token_route = respx.post(f"{API}/oauth/token").mock(return_value=location_grant())
    state = await start_install(client)

    response = await client.get("/oauth/ghl/callback", params={"code": "code-123", "state": state})

    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "installed",
        "user_type": "Location",
        "company_id": COMPANY,
        "locations": [LOCATION],
        "pending": {},
    }
    form = parse_qs(token_route.calls.last.request.content.decode())
    assert form == {
        "grant_type": ["authorization_code"],
        "code": ["code-123"],
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
        "user_type": ["Location"],
        "redirect_uri": [REDIRECT_URI],
    }
    row = await installation(sessionmaker)
    assert row is not None and row.auth_mode == "oauth" and row.user_type == "Location"
    assert row.company_id == COMPANY and not row.needs_reauth
    assert row.scopes == "payments/orders.readonly invoices.write"
    assert row.expires_at is not None and row.expires_at > utcnow() + timedelta(hours=23)
    cipher = TokenCipher([KEY_OLD])
    assert cipher.decrypt(row.access_token_enc or "") == "at_loc_plain"
    assert cipher.decrypt(row.refresh_token_enc or "") == "rt_loc_plain"
    assert_plaintext_nowhere(await raw_rows(sessionmaker), "at_loc_plain", "rt_loc_plain")


async def raw_rows(sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    """Every column of every installation row as the database holds it."""
    async with sessionmaker() as session:
        rows = (await session.execute(text("SELECT * FROM ghl_installations"))).all()
    return repr(rows)


def assert_plaintext_nowhere(stored: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in stored


@respx.mock
async def test_a_state_works_once(client):
    token_route = respx.post(f"{API}/oauth/token").mock(return_value=location_grant())
    state = await start_install(client)
    first = await client.get("/oauth/ghl/callback", params={"code": "c1", "state": state})
    assert first.status_code == 200
    reused = await client.get("/oauth/ghl/callback", params={"code": "c2", "state": state})
    assert reused.status_code == 400
    assert reused.headers["content-type"] == "application/problem+json"
    assert "already used" in reused.json()["detail"]
    assert token_route.call_count == 1


@respx.mock
async def test_concurrent_callbacks_with_one_state_exchange_one_code(client):
    token_route = respx.post(f"{API}/oauth/token").mock(return_value=location_grant())
    state = await start_install(client)
    answers = await asyncio.gather(
        *(
            client.get("/oauth/ghl/callback", params={"code": f"c{n}", "state": state})
            for n in range(5)
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 400, 400, 400, 400]
    assert token_route.call_count == 1


@respx.mock
async def test_an_expired_or_unknown_or_missing_state_is_400(client, sessionmaker):
    token_route = respx.post(f"{API}/oauth/token").mock(return_value=location_grant())
    state = await start_install(client)
    async with sessionmaker.begin() as session:
        await session.execute(
            update(GhlOAuthState).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    for params in (
        {"code": "c", "state": state},
        {"code": "c", "state": "never-issued"},
        {"code": "c"},
    ):
        response = await client.get("/oauth/ghl/callback", params=params)
        assert response.status_code == 400, params
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 400
    assert token_route.call_count == 0


@respx.mock
async def test_a_code_ghl_refuses_is_400_and_ghl_down_is_502(client, sessionmaker):
    respx.post(f"{API}/oauth/token").mock(
        side_effect=[
            httpx.Response(
                400,
                json={
                    "error": "invalid_grant",
                    "error_description": "Invalid grant: authorization code is invalid",
                },
            ),
            httpx.Response(503, text="upstream down"),
        ]
    )
    refused = await client.get(
        "/oauth/ghl/callback", params={"code": "bad", "state": await start_install(client)}
    )
    assert refused.status_code == 400 and "authorization code is invalid" in refused.text
    down = await client.get(
        "/oauth/ghl/callback", params={"code": "c", "state": await start_install(client)}
    )
    assert down.status_code == 502
    assert await installation(sessionmaker) is None


@respx.mock
async def test_agency_install_mints_a_token_per_approved_location(client, sessionmaker):
    token_route = respx.post(f"{API}/oauth/token").mock(
        return_value=httpx.Response(
            200,
            json={
                "access_token": "at_company_plain",
                "refresh_token": "rt_company_plain",
                "expires_in": 86399,
                "scope": "oauth.write",
                "userType": "Company",
                "companyId": COMPANY,
                "approvedLocations": [LOCATION, LOCATION_2],
                "userId": "user0000000000000000001",
            },
        )
    )

    def mint(request: httpx.Request) -> httpx.Response:
        location = parse_qs(request.content.decode())["locationId"][0]
        if location == LOCATION_2:
            return httpx.Response(
                400, json={"statusCode": 400, "message": "Location is not active"}
            )
        return httpx.Response(
            200,
            json={
                "access_token": "at_minted_plain",
                "expires_in": 86399,
                "scope": "invoices.write",
                "locationId": location,
                "userId": "user0000000000000000001",
            },
        )

    mint_route = respx.post(f"{API}/oauth/locationToken").mock(side_effect=mint)
    state = await start_install(client, "Company")

    response = await client.get("/oauth/ghl/callback", params={"code": "c", "state": state})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user_type"] == "Company" and body["company_id"] == COMPANY
    assert body["locations"] == [LOCATION, LOCATION_2]
    assert "Location is not active" in body["pending"][LOCATION_2]
    assert parse_qs(token_route.calls.last.request.content.decode())["user_type"] == ["Company"]
    assert all(
        c.request.headers["Authorization"] == "Bearer at_company_plain" for c in mint_route.calls
    )
    cipher = TokenCipher([KEY_OLD])
    agency = await installation(sessionmaker, None, COMPANY)
    assert agency is not None and agency.user_type == "Company"
    assert cipher.decrypt(agency.refresh_token_enc or "") == "rt_company_plain"
    minted = await installation(sessionmaker, LOCATION)
    assert minted is not None and minted.company_id == COMPANY
    assert minted.refresh_token_enc is None  # the agency mints the next one
    assert cipher.decrypt(minted.access_token_enc or "") == "at_minted_plain"
    pending = await installation(sessionmaker, LOCATION_2)
    assert pending is not None and pending.access_token_enc is None
    assert_plaintext_nowhere(
        await raw_rows(sessionmaker), "at_company_plain", "rt_company_plain", "at_minted_plain"
    )


@respx.mock
async def test_sync_status_shows_each_installation_without_tokens(client):
    respx.post(f"{API}/oauth/token").mock(return_value=location_grant())
    await client.get(
        "/oauth/ghl/callback", params={"code": "c", "state": await start_install(client)}
    )
    status = await client.get("/sync-status")
    assert status.status_code == 200
    [entry] = status.json()["installations"]
    assert entry["location_id"] == LOCATION and entry["auth_mode"] == "oauth"
    assert entry["needs_reauth"] is False and entry["token_expires_at"]
    assert entry["token_source"] == "own"
    assert entry["rate_limit"]["limit"] == 100 and entry["rate_limit"]["remaining"] == 100
    assert "at_loc_plain" not in status.text and "rt_loc_plain" not in status.text


@respx.mock
async def test_sync_status_shows_a_private_integration_token_location(client_factory, database_url):
    respx.get(f"{API}/payments/integrations/provider/whitelabel").mock(
        return_value=httpx.Response(200, json={"providers": []})
    )
    client = await client_factory(
        make_settings(
            database_url,
            worker="off",
            ghl_api_url=API,
            ghl_private_token="pit-secret-value",
            ghl_location_id=LOCATION,
        )
    )
    status = await client.get("/sync-status")
    [entry] = status.json()["installations"]
    assert entry == {
        "location_id": LOCATION,
        "kind": "location",
        "auth_mode": "pit",
        "token_expires_at": None,
        "needs_reauth": False,
        "rate_limit": entry["rate_limit"],
        "whitelabel_provider": entry["whitelabel_provider"],
    }
    assert entry["whitelabel_provider"]["status"] == "known"
    assert entry["whitelabel_provider"]["providers"] == []
    assert "pit-secret-value" not in status.text


async def test_cli_install_url_prints_a_link_with_a_usable_state(
    database_url, sessionmaker, monkeypatch, tmp_path
):
    monkeypatch.chdir(tmp_path)  # no stray .env
    env = {
        "DATABASE_URL": database_url,
        "WIZESYNC_ENV": "test",
        "GHL_CLIENT_ID": CLIENT_ID,
        "GHL_CLIENT_SECRET": CLIENT_SECRET,
        "GHL_REDIRECT_URI": REDIRECT_URI,
        "GHL_AUTHORIZE_URL": AUTHORIZE,
        "COLUMNS": "400",
    }
    from wizesync.cli import app

    result = await asyncio.to_thread(CliRunner().invoke, app, ["ghl", "install-url"], env=env)
    assert result.exit_code == 0, result.output
    url = result.stdout.strip()
    assert url.startswith(AUTHORIZE + "?")
    state = parse_qs(urlsplit(url).query)["state"][0]
    async with sessionmaker() as session:
        hashes = (await session.execute(select(GhlOAuthState.state_hash))).scalars().all()
    assert hashes == [hashlib.sha256(state.encode()).hexdigest()]
    assert "https://wizesync.example.com/oauth/ghl/install" in result.stderr

    unconfigured = {k: v for k, v in env.items() if not k.startswith("GHL_")}
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["ghl", "install-url"], env=unconfigured
    )
    assert result.exit_code == 2 and "GHL_CLIENT_ID" in result.stderr
