"""`wizesync doctor` on the outside systems: GHL tokens and scopes (OAuth installations as the
database holds them; a Private Integration Token by one cheap call) and Wizehire's API, each
problem said in words. GHL and Wizehire are respx; installations are on both databases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import update

from tests.conftest import make_settings
from tests.ghl.kit import KEY_NEW, KEY_OLD, LOCATION, LOCATION_2, oauth_settings
from tests.test_cli import assert_no_traceback, cli_env, run_cli, words  # noqa: F401 (fixture)
from wizesync.db import install_repo
from wizesync.db.base import utcnow
from wizesync.db.ghl_models import GhlInstallation
from wizesync.db.install_repo import StoredTokens
from wizesync.doctor.basic import run_checks
from wizesync.ghl.crypto import TokenCipher
from wizesync.ghl.oauth import SCOPES

GHL = "https://ghl.test"
WIZEHIRE = "https://wizehire.test/api"
WHITELABEL = f"{GHL}/payments/integrations/provider/whitelabel"
ORDERS = f"{WIZEHIRE}/v1/orders"
PIT_LOCATION = "LocPit00000000000001"
ALL_SCOPES = " ".join(SCOPES)


def by_name(results: list[tuple[bool, str, str]]) -> dict[str, tuple[bool, str]]:
    return {name: (ok, message) for ok, name, message in results}


def pit_settings(database_url: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "ghl_api_url": GHL,
        "ghl_private_token": "pit-doctor-token",
        "ghl_location_id": PIT_LOCATION,
        "wizehire_api_url": WIZEHIRE,
        "wizehire_api_key": "wh-doctor-key",
    }
    values.update(overrides)
    return make_settings(database_url, **values)


def wizehire_ok() -> None:
    respx.get(ORDERS).mock(return_value=httpx.Response(200, json={"data": [], "next_cursor": None}))


# --- Private Integration Token: one cheap call ---------------------------------------------------


@respx.mock
async def test_a_working_private_token_and_wizehire_pass(database_url, engine) -> None:
    ghl = respx.get(WHITELABEL).mock(return_value=httpx.Response(200, json={"providers": []}))
    wizehire_ok()
    checks = by_name(await run_checks(pit_settings(database_url)))
    assert checks["ghl token"] == (
        True,
        "the Private Integration Token works for location "
        f"{PIT_LOCATION} (0 white-label provider(s))",
    )
    assert checks["wizehire api"] == (True, f"{WIZEHIRE} answers GET /v1/orders (api_key auth)")
    assert all(ok for ok, _ in checks.values()), checks
    [call] = ghl.calls
    assert call.request.headers["Authorization"] == "Bearer pit-doctor-token"
    assert call.request.headers["Version"] == "2021-07-28"
    assert call.request.url.params["altId"] == PIT_LOCATION
    [orders] = respx.calls[1:]
    assert orders.request.url.params["limit"] == "1"
    assert orders.request.headers["Authorization"] == "Bearer wh-doctor-key"


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        (
            401,
            {"statusCode": 401, "message": "The token is not authorized for this scope."},
            "the token is not allowed to use this endpoint: it needs the scope "
            "payments/integration.readonly",
        ),
        (
            401,
            {"statusCode": 401, "message": "Invalid JWT"},
            "GHL does not accept the credentials: GHL rejected the Private Integration Token",
        ),
        (503, {"statusCode": 503, "message": "Service Unavailable"}, "GHL failed with 503"),
    ],
)
@respx.mock
async def test_a_private_token_problem_is_said_in_words(
    database_url, engine, status, body, said
) -> None:
    respx.get(WHITELABEL).mock(return_value=httpx.Response(status, json=body))
    wizehire_ok()
    ok, message = by_name(await run_checks(pit_settings(database_url)))["ghl token"]
    assert not ok
    assert message.startswith(f"Private Integration Token for location {PIT_LOCATION} at {GHL}")
    assert said in message
    assert "pit-doctor-token" not in message


async def test_an_unreachable_ghl_is_said_in_words(database_url, engine) -> None:
    from tests.support.processes import free_port

    settings = pit_settings(
        database_url,
        ghl_api_url=f"http://127.0.0.1:{free_port()}/ghl",
        wizehire_api_url="http://wizehire-doctor.invalid",
    )
    checks = by_name(await run_checks(settings))
    assert checks["ghl token"][0] is False
    assert "cannot reach GHL: the connection was refused" in checks["ghl token"][1]
    assert checks["wizehire api"] == (
        False,
        "http://wizehire-doctor.invalid: cannot reach it: the host name does not resolve (DNS)",
    )


# --- Wizehire -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (
            httpx.Response(401, json={"title": "Unauthorized", "detail": "bad key"}),
            "Wizehire refused the credentials (401): bad key; check WIZEHIRE_API_KEY",
        ),
        (httpx.ReadTimeout("slow"), "cannot reach it: no answer in time (timeout)"),
        (
            httpx.Response(404, json={"detail": "no such route"}),
            "GET /v1/orders is not there (404): is WIZEHIRE_API_URL the API's base URL?",
        ),
        (httpx.Response(200, json={"orders": "?"}), "the answer is not the contract's orders page"),
    ],
)
@respx.mock
async def test_wizehire_problems_are_said_in_words(database_url, engine, answer, said) -> None:
    respx.get(WHITELABEL).mock(return_value=httpx.Response(200, json={"providers": []}))
    route = respx.get(ORDERS)
    if isinstance(answer, Exception):
        route.mock(side_effect=answer)
    else:
        route.mock(return_value=answer)
    ok, message = by_name(await run_checks(pit_settings(database_url)))["wizehire api"]
    assert not ok
    assert message.startswith(f"{WIZEHIRE}: ")
    assert said in message
    assert "wh-doctor-key" not in message
    assert route.call_count == 1  # doctor asks once, it does not retry for minutes


async def test_wizehire_without_credentials_names_the_variables(database_url, engine) -> None:
    settings = pit_settings(database_url, wizehire_api_key=None)
    with respx.mock:
        respx.get(WHITELABEL).mock(return_value=httpx.Response(200, json={"providers": []}))
        ok, message = by_name(await run_checks(settings))["wizehire api"]
    assert not ok and "WIZEHIRE_API_KEY" in message


# --- OAuth installations: what the database holds -------------------------------------------------


async def install(
    sessionmaker,
    cipher: TokenCipher,
    location_id: str,
    *,
    scopes: str | None = ALL_SCOPES,
    expires_in: float = 3600,
) -> None:
    tokens = StoredTokens(
        cipher.encrypt(f"at-{location_id}"),
        cipher.encrypt(f"rt-{location_id}"),
        utcnow() + timedelta(seconds=expires_in),
        scopes,
    )
    async with sessionmaker.begin() as session:
        await install_repo.upsert_location(
            session, location_id=location_id, company_id=None, tokens=tokens
        )


@respx.mock
async def test_healthy_installations_pass_with_their_expiry_and_scopes(
    database_url, sessionmaker
) -> None:
    wizehire_ok()
    cipher = TokenCipher([KEY_OLD])
    await install(sessionmaker, cipher, LOCATION)
    await install(sessionmaker, cipher, LOCATION_2, expires_in=-60)
    settings = oauth_settings(
        database_url, wizehire_api_url=WIZEHIRE, wizehire_api_key="wh-doctor-key"
    )
    checks = by_name(await run_checks(settings))
    ok, message = checks[f"ghl location {LOCATION}"]
    assert ok and "access token valid for" in message
    assert f"all {len(SCOPES)} scopes granted" in message
    ok, message = checks[f"ghl location {LOCATION_2}"]
    assert ok and "expired at" in message and "renewed on the next call" in message
    assert all(ok for ok, _ in checks.values()), checks
    assert not [c for c in respx.calls if c.request.url.host == "ghl.test"]  # nothing refreshed


@respx.mock
async def test_each_installation_problem_is_said_in_words(database_url, sessionmaker) -> None:
    wizehire_ok()
    old, new = TokenCipher([KEY_OLD]), TokenCipher([KEY_NEW])
    await install(sessionmaker, old, LOCATION, scopes="contacts.readonly invoices.write")
    await install(sessionmaker, old, LOCATION_2)
    await install(sessionmaker, new, "LocUnreadable0000001")  # stored under another key
    await install(sessionmaker, old, "LocNeedsReauth000001")
    async with sessionmaker.begin() as session:
        row = await install_repo.get_installation(session, "LocNeedsReauth000001")
        assert row is not None
        await install_repo.mark_needs_reauth(
            session, [row.id], "Invalid grant: refresh token is invalid"
        )
        await session.execute(
            update(GhlInstallation)
            .where(GhlInstallation.location_id == LOCATION_2)
            .values(inactive_until=utcnow() + timedelta(minutes=5))
        )
    settings = oauth_settings(
        database_url, wizehire_api_url=WIZEHIRE, wizehire_api_key="wh-doctor-key"
    )
    checks = by_name(await run_checks(settings))

    ok, message = checks[f"ghl location {LOCATION}"]
    assert not ok and message.startswith("missing scopes payments/orders.readonly")
    assert "products/prices.readonly" in message and "install it again" in message
    ok, message = checks[f"ghl location {LOCATION_2}"]
    assert not ok and "not active" in message
    ok, message = checks["ghl location LocUnreadable0000001"]
    assert not ok and "do not decrypt with TOKEN_ENCRYPTION_KEY" in message
    ok, message = checks["ghl location LocNeedsReauth000001"]
    assert not ok and message == (
        "needs re-authorisation: Invalid grant: refresh token is "
        "invalid; install the app again (`wizesync ghl install-url`)"
    )


async def test_oauth_mode_with_nothing_installed_says_how_to_install(database_url, engine) -> None:
    with respx.mock:
        wizehire_ok()
        checks = by_name(
            await run_checks(
                oauth_settings(database_url, wizehire_api_url=WIZEHIRE, wizehire_api_key="k")
            )
        )
    ok, message = checks["ghl installations"]
    assert not ok and "no GHL location is installed yet" in message


# --- the command ----------------------------------------------------------------------------------


def test_doctor_exits_1_and_says_the_scope_problem(cli_env, sqlite_url) -> None:  # noqa: F811
    env = {
        **cli_env,
        "DATABASE_URL": sqlite_url,
        "WIZESYNC_ENV": "test",
        "GHL_API_URL": GHL,
        "GHL_PRIVATE_TOKEN": "pit-doctor-token",
        "GHL_LOCATION_ID": PIT_LOCATION,
        "WIZEHIRE_API_URL": WIZEHIRE,
        "WIZEHIRE_API_KEY": "wh-doctor-key",
    }
    with respx.mock:
        respx.get(WHITELABEL).mock(
            return_value=httpx.Response(
                401,
                json={"statusCode": 401, "message": "The token is not authorized for this scope."},
            )
        )
        wizehire_ok()
        result = run_cli(env, "doctor")
    assert result.exit_code == 1
    text = words(result)
    assert "✗ ghl token: Private Integration Token for location" in text
    assert "needs the scope payments/integration.readonly" in text
    assert f"✓ wizehire api: {WIZEHIRE} answers GET /v1/orders" in text
    assert "pit-doctor-token" not in text and "wh-doctor-key" not in text
    assert_no_traceback(result)


def test_doctor_outside_development_without_ghl_says_what_to_set(
    cli_env,  # noqa: F811
    sqlite_url,
) -> None:
    env = {**cli_env, "DATABASE_URL": sqlite_url, "WIZESYNC_ENV": "test"}
    result = run_cli(env, "doctor")
    assert result.exit_code == 1
    text = words(result)
    assert "✗ ghl: GHL is not configured: set GHL_PRIVATE_TOKEN and GHL_LOCATION_ID" in text
    assert "✗ wizehire api: no Wizehire API credentials are configured" in text
