"""Closed outside production too: the sandbox's public GHL key, other apps' install events,
the sandbox's config, GHL deliveries without a timestamp, and who may start a GHL install."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import make_settings
from tests.ghl.kit import installation, oauth_settings
from tests.support.signing import ghl_request
from tests.support.waiting import wait_for_status
from tests.support.webhook_kit import (
    Ed25519TestKey,
    assert_problem,
    ghl_signed,
    new_whsec,
    stored_total,
)
from wizesync import samples
from wizesync.config import Settings
from wizesync.db.ghl_models import GhlOAuthState
from wizesync.db.oauth_state_repo import MAX_PENDING_STATES
from wizesync.devmode import SANDBOX_GHL_PUBLIC_KEY_PEM
from wizesync.state import build_verifiers

KEY = Ed25519TestKey.generate()
ADMIN = "fail-closed-admin-token-0123456789abcdef"
GHL = "/webhooks/ghl"


# --- the sandbox's GHL key -----------------------------------------------------------------------


@pytest.mark.parametrize("env", ["development", "test"])
def test_sandbox_key_is_not_trusted_unless_the_in_process_sandbox_runs(env: str) -> None:
    settings = Settings(
        _env_file=None,
        wizesync_env=env,  # type: ignore[arg-type]
        ghl_webhook_public_key=KEY.public_pem,
    )
    body = b'{"type": "UNINSTALL"}'
    sandbox_signed = ghl_request(body)[1]

    _, verifier = build_verifiers(settings)
    with pytest.raises(Exception, match="does not verify"):
        verifier.verify(body, sandbox_signed)

    _, with_sandbox = build_verifiers(settings, extra_ghl_keys=[SANDBOX_GHL_PUBLIC_KEY_PEM])
    assert with_sandbox.verify(body, sandbox_signed) == "ed25519"


async def test_development_service_with_credentials_refuses_sandbox_signed_webhooks(
    client_factory: Any, database_url: str, engine: Any, sessionmaker: Any
) -> None:
    """GHL credentials configured: no in-process sandbox, so its public key signs nothing."""
    settings = make_settings(
        database_url,
        wizesync_env="development",
        worker="off",
        ghl_private_token="pit-token",
        ghl_location_id="loc1",
        ghl_webhook_public_key=KEY.public_pem,
    )
    client = await client_factory(settings)
    body, headers = ghl_request(samples.ghl_event("UNINSTALL"))
    assert_problem(await client.post(GHL, content=body, headers=headers), 401)
    assert await stored_total(sessionmaker) == 0


async def test_in_process_development_sandbox_still_signs_its_webhooks(
    client_factory: Any, database_url: str, engine: Any
) -> None:
    settings = make_settings(
        database_url,
        wizesync_env="development",
        worker="off",
        ghl_webhook_public_key=KEY.public_pem,
    )
    client = await client_factory(settings, sandbox=True)
    body, headers = ghl_request(samples.ghl_event("OrderCreate"))
    assert (await client.post(GHL, content=body, headers=headers)).status_code == 202


# --- INSTALL / UNINSTALL carry our app id -------------------------------------------------------


@pytest.mark.parametrize(
    ("app_id", "configured"),
    [
        ("another-app-id", "app00000000000000000000e"),
        ("app00000000000000000000e", None),
    ],
    ids=["other-app", "app-id-unset"],
)
async def test_install_events_of_another_app_or_without_our_app_id_change_nothing(
    client_factory: Any,
    database_url: str,
    engine: Any,
    sessionmaker: Any,
    app_id: str,
    configured: str | None,
) -> None:
    client = await client_factory(oauth_settings(database_url, ghl_app_id=configured))
    payload = {
        "type": "INSTALL",
        "appId": app_id,
        "webhookId": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat(),
        "locationId": "loc-x",
    }
    body, headers = ghl_request(payload)
    response = await client.post(GHL, content=body, headers=headers)
    assert response.status_code == 202, response.text
    event = await wait_for_status(sessionmaker, response.json()["id"], "dead")
    assert "GHL_APP_ID" in (event.last_error or "") or "not ours" in (event.last_error or "")

    assert await installation(sessionmaker, "loc-x") is None


# --- the sandbox's control plane -----------------------------------------------------------------


async def test_sandbox_config_never_shows_the_wizehire_secret(
    client_factory: Any, database_url: str, engine: Any
) -> None:
    secret = new_whsec()
    settings = make_settings(
        database_url, wizesync_env="development", worker="off", wizehire_webhook_secret=secret
    )
    client = await client_factory(settings, sandbox=True)
    shown = await client.get("/sandbox/_sandbox/config")
    assert shown.status_code == 200, shown.text
    assert secret not in shown.text
    assert shown.json()["wizehire_secret"] == "<set>"
    patched = await client.patch("/sandbox/_sandbox/config", json={"webhooks": "hold"})
    assert secret not in patched.text


# --- GHL deliveries without a timestamp ---------------------------------------------------------


def _production(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "wizesync_env": "production",
        "worker": "off",
        "admin_token": ADMIN,
        "wizehire_webhook_secret": new_whsec(),
        "wizehire_api_url": "https://api.wizehire.example",
        "ghl_webhook_public_key": KEY.public_pem,
        "allow_sqlite_in_production": True,
    }
    values.update(overrides)
    return make_settings(database_url, **values)


@pytest.mark.parametrize(
    "body",
    [
        lambda: {k: v for k, v in samples.ghl_event("OrderCreate").items() if k != "timestamp"},
        lambda: {**samples.ghl_event("OrderCreate"), "timestamp": "yesterday-ish"},
        lambda: b"not json at all",
    ],
    ids=["absent", "unreadable", "not-json"],
)
async def test_production_refuses_ghl_deliveries_without_a_readable_timestamp(
    client_factory: Any, database_url: str, engine: Any, sessionmaker: Any, body: Any
) -> None:
    client = await client_factory(_production(database_url))
    signed, headers = ghl_signed(body(), KEY)
    problem = assert_problem(await client.post(GHL, content=signed, headers=headers), 401)
    assert "timestamp" in problem["detail"]
    assert await stored_total(sessionmaker) == 0

    fresh, headers = ghl_signed(samples.ghl_event("OrderCreate"), KEY)
    assert (await client.post(GHL, content=fresh, headers=headers)).status_code == 202


async def test_production_reads_the_timestamp_of_a_body_it_cannot_store_as_json(
    client_factory: Any, database_url: str, engine: Any, sessionmaker: Any
) -> None:
    event = samples.ghl_event("OrderCreate")
    body = json.dumps(event).replace('"currency": "USD"', '"currency": "U\\u0000SD"').encode()
    client = await client_factory(_production(database_url))
    signed, headers = ghl_signed(body, KEY)
    response = await client.post(GHL, content=signed, headers=headers)
    assert response.status_code == 202 and response.json()["status"] == "quarantined"


# --- who may start a GHL install -----------------------------------------------------------------


@pytest.fixture
async def oauth_client(client_factory: Any, database_url: str, engine: Any) -> httpx.AsyncClient:
    client = await client_factory(oauth_settings(database_url, worker="off", admin_token=ADMIN))
    client.base_url = httpx.URL("https://test")
    return client


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", f"Basic {ADMIN}", "Bearer ünïcødé-token".encode()]
)
async def test_install_needs_the_admin_bearer_token(
    oauth_client: httpx.AsyncClient, authorization: str | bytes | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await oauth_client.get("/oauth/ghl/install", headers=headers)
    assert_problem(response, 401)
    assert "set-cookie" not in response.headers


async def test_install_is_closed_without_an_admin_token_configured(
    client_factory: Any, database_url: str, engine: Any
) -> None:
    client = await client_factory(oauth_settings(database_url, worker="off"))
    problem = assert_problem(await client.get("/oauth/ghl/install"), 401)
    assert "ADMIN_TOKEN" in problem["detail"]


async def test_install_state_is_bound_to_the_browser_by_an_httponly_cookie(
    oauth_client: httpx.AsyncClient,
) -> None:
    response = await oauth_client.get(
        "/oauth/ghl/install", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert response.status_code == 302, response.text
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "samesite=lax" in cookie.lower()
    state = parse_qs(urlsplit(response.headers["location"]).query)["state"][0]

    # Another browser (no cookie) following the callback link: refused, state untouched.
    async with httpx.AsyncClient(
        transport=oauth_client._transport, base_url="https://test"
    ) as other_browser:
        refused = await other_browser.get(
            "/oauth/ghl/callback", params={"code": "c", "state": state}
        )
    problem = assert_problem(refused, 400)
    assert "browser" in problem["detail"]


async def test_pending_install_states_are_bounded(
    oauth_client: httpx.AsyncClient, sessionmaker: Any
) -> None:
    for _ in range(MAX_PENDING_STATES + 5):
        response = await oauth_client.get(
            "/oauth/ghl/install", headers={"Authorization": f"Bearer {ADMIN}"}
        )
        assert response.status_code == 302
    async with sessionmaker() as session:
        count = await session.execute(select(func.count()).select_from(GhlOAuthState))
        assert count.scalar_one() == MAX_PENDING_STATES


async def test_non_ascii_bearer_header_is_401_not_500(
    client_factory: Any, database_url: str, engine: Any
) -> None:
    client = await client_factory(make_settings(database_url, worker="off", admin_token=ADMIN))
    response = await client.get("/admin/events", headers={"Authorization": "Bearer tökén".encode()})
    assert_problem(response, 401)
    ok = await client.get("/admin/events", headers={"Authorization": f"Bearer {ADMIN}"})
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/events/222030988921633669120"),
        ("POST", "/admin/events/222030988921633669120/replay"),
        ("GET", "/admin/events/9223372036854775808"),
    ],
)
async def test_admin_ids_beyond_int64_are_404(
    client_factory: Any, database_url: str, engine: Any, method: str, path: str
) -> None:
    client = await client_factory(make_settings(database_url, worker="off"))
    assert_problem(await client.request(method, path), 404)
    listed = await client.get("/admin/events", params={"before_id": "36893488147419103231"})
    assert listed.status_code == 200 and listed.json() == {"data": []}


async def test_install_accepts_the_operators_browser_session(
    oauth_client: httpx.AsyncClient,
) -> None:
    html = {"Accept": "text/html"}
    # Not logged in: the browser is sent to the login form, and comes back here after it.
    first = await oauth_client.get("/oauth/ghl/install", headers=html)
    assert first.status_code == 303
    assert first.headers["location"] == "/login?next=/oauth/ghl/install"
    form = await oauth_client.get("/login", params={"next": "/oauth/ghl/install"})
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    login = await oauth_client.post(
        "/login", data={"token": ADMIN, "csrf_token": csrf, "next": "/oauth/ghl/install"}
    )
    assert login.status_code == 303 and login.headers["location"] == "/oauth/ghl/install"
    response = await oauth_client.get("/oauth/ghl/install", headers=html)
    assert response.status_code == 302, response.text
    assert "state=" in response.headers["location"]
