"""DbTokenProvider: refresh ahead of expiry and once on rejection, `invalid_grant` -> needs
re-authorisation without a crash loop, a paused location backs off, agency-minted location
tokens, key rotation, and the PIT/OAuth choice. GHL's token endpoint is mocked with respx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.ghl.kit import (
    COMPANY,
    KEY_NEW,
    KEY_OLD,
    LOCATION,
    installation,
    oauth_settings,
    seed_agency,
    seed_location,
)
from wizesync.config import ConfigError, Settings
from wizesync.db.base import utcnow
from wizesync.db.ghl_models import GhlInstallation
from wizesync.ghl.crypto import TokenCipher
from wizesync.ghl.errors import GhlLocationInactive, GhlNeedsReauth, GhlNotInstalled
from wizesync.ghl.limits import StaticTokenProvider
from wizesync.ghl.oauth import GhlOAuth
from wizesync.ghl.tokens import DbTokenProvider, build_token_provider

API = "https://ghl.test"


def grant(access: str, refresh: str | None = None, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": 86399,
        "scope": "invoices.write",
        "userType": "Location",
        "locationId": LOCATION,
        "companyId": COMPANY,
    }
    if refresh:
        body["refresh_token"] = refresh
    body.update(extra)
    return body


INVALID_GRANT = httpx.Response(
    400,
    json={"error": "invalid_grant", "error_description": "Invalid grant: refresh token is invalid"},
)
INACTIVE = httpx.Response(
    400, json={"statusCode": 400, "error": "Bad Request", "message": "Location is not active"}
)


@pytest.fixture
def conf(database_url: str, engine: object) -> Settings:
    return oauth_settings(database_url, API)


@pytest.fixture
def cipher(conf: Settings) -> TokenCipher:
    return TokenCipher.from_settings(conf)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def provider(
    sessionmaker: async_sessionmaker[AsyncSession],
    conf: Settings,
    cipher: TokenCipher,
    http: httpx.AsyncClient,
) -> DbTokenProvider:
    return DbTokenProvider(sessionmaker, GhlOAuth(http, conf), cipher, conf)


def another_process(
    sessionmaker: async_sessionmaker[AsyncSession], conf: Settings, http: httpx.AsyncClient
) -> DbTokenProvider:
    """A second provider: what another process would have (no shared memory)."""
    return DbTokenProvider(
        sessionmaker, GhlOAuth(http, conf), TokenCipher.from_settings(conf), conf
    )


@respx.mock
async def test_a_fresh_token_is_used_without_calling_ghl(provider, sessionmaker, cipher):
    token_route = respx.post(f"{API}/oauth/token")
    await seed_location(sessionmaker, cipher, access="at_fresh", refresh="rt_1")
    assert await provider.access_token(LOCATION) == "at_fresh"
    assert await provider.access_token(LOCATION) == "at_fresh"
    assert token_route.call_count == 0


@respx.mock
async def test_a_token_near_expiry_is_refreshed_ahead_and_stored_before_use(
    provider, sessionmaker, cipher
):
    token_route = respx.post(f"{API}/oauth/token").mock(
        return_value=httpx.Response(200, json=grant("at_new", "rt_2"))
    )
    # Still valid for two minutes: inside the five-minute refresh margin.
    await seed_location(sessionmaker, cipher, access="at_old", refresh="rt_1", expires_in=120)

    assert await provider.access_token(LOCATION) == "at_new"

    form = parse_qs(token_route.calls.last.request.content.decode())
    assert form["grant_type"] == ["refresh_token"] and form["refresh_token"] == ["rt_1"]
    assert form["user_type"] == ["Location"] and form["client_id"] == ["client-for-tests"]
    row = await installation(sessionmaker)
    assert row is not None
    assert cipher.decrypt(row.access_token_enc or "") == "at_new"
    assert cipher.decrypt(row.refresh_token_enc or "") == "rt_2"
    assert row.expires_at is not None and row.expires_at > utcnow() + timedelta(hours=23)
    assert "at_new" not in (row.access_token_enc or "") and "rt_2" not in (
        row.refresh_token_enc or ""
    )


@respx.mock
async def test_concurrent_rejections_of_one_token_refresh_once(provider, sessionmaker, cipher):
    token_route = respx.post(f"{API}/oauth/token").mock(
        return_value=httpx.Response(200, json=grant("at_new", "rt_2"))
    )
    await seed_location(sessionmaker, cipher, access="at_old", refresh="rt_1")

    async def rejected_then_retry() -> str:
        await provider.token_rejected(LOCATION, "at_old")
        return await provider.access_token(LOCATION)

    tokens = await asyncio.gather(*(rejected_then_retry() for _ in range(20)))
    assert tokens == ["at_new"] * 20
    assert token_route.call_count == 1


@respx.mock
async def test_a_rejection_another_process_already_handled_uses_its_token(
    sessionmaker, conf, cipher, http
):
    token_route = respx.post(f"{API}/oauth/token").mock(
        return_value=httpx.Response(200, json=grant("at_new", "rt_2"))
    )
    await seed_location(sessionmaker, cipher, access="at_old", refresh="rt_1")
    first, second = (another_process(sessionmaker, conf, http) for _ in range(2))
    assert await second.access_token(LOCATION) == "at_old"  # cached in "process" two

    await first.token_rejected(LOCATION, "at_old")
    await second.token_rejected(LOCATION, "at_old")  # re-reads the row: already replaced

    assert await second.access_token(LOCATION) == "at_new"
    assert token_route.call_count == 1


@respx.mock
async def test_a_reused_refresh_token_marks_needs_reauth_without_a_crash_loop(
    provider, sessionmaker, conf, cipher, http, client_factory
):
    token_route = respx.post(f"{API}/oauth/token").mock(return_value=INVALID_GRANT)
    await seed_location(sessionmaker, cipher, access="at_old", refresh="rt_used", expires_in=-5)

    with pytest.raises(GhlNeedsReauth, match="refresh token is invalid"):
        await provider.access_token(LOCATION)
    row = await installation(sessionmaker)
    assert row is not None and row.needs_reauth and row.reauth_at is not None
    assert "refresh token is invalid" in (row.reauth_reason or "")

    # Neither this process nor another one tries the dead token again.
    with pytest.raises(GhlNeedsReauth):
        await provider.access_token(LOCATION)
    with pytest.raises(GhlNeedsReauth):
        await another_process(sessionmaker, conf, http).token_rejected(LOCATION, "at_old")
    assert token_route.call_count == 1

    client = await client_factory(conf)
    status = (await client.get("/sync-status")).json()
    [entry] = [e for e in status["installations"] if e["location_id"] == LOCATION]
    assert entry["needs_reauth"] is True and entry["auth_mode"] == "oauth"


@respx.mock
async def test_an_inactive_location_backs_off_and_recovers_with_the_same_refresh_token(
    provider, sessionmaker, cipher
):
    token_route = respx.post(f"{API}/oauth/token").mock(return_value=INACTIVE)
    await seed_location(sessionmaker, cipher, access="at_old", refresh="rt_1", expires_in=-5)

    with pytest.raises(GhlLocationInactive) as first:
        await provider.access_token(LOCATION)
    assert first.value.delay == pytest.approx(300)
    with pytest.raises(GhlLocationInactive) as paused:  # paused: GHL is not asked again
        await provider.access_token(LOCATION)
    assert 0 < paused.value.delay <= 300
    assert token_route.call_count == 1
    row = await installation(sessionmaker)
    assert row is not None and not row.needs_reauth and row.inactive_until is not None
    assert cipher.decrypt(row.refresh_token_enc or "") == "rt_1"  # kept for later

    await _end_pause(sessionmaker)
    with pytest.raises(GhlLocationInactive) as again:
        await provider.access_token(LOCATION)
    assert again.value.delay == pytest.approx(600)  # the pause grows

    await _end_pause(sessionmaker)
    token_route.mock(return_value=httpx.Response(200, json=grant("at_new", "rt_2")))
    assert await provider.access_token(LOCATION) == "at_new"
    form = parse_qs(token_route.calls.last.request.content.decode())
    assert form["refresh_token"] == ["rt_1"]
    row = await installation(sessionmaker)
    assert row is not None and row.inactive_until is None and row.inactive_strikes == 0


async def _end_pause(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker.begin() as session:
        await session.execute(
            update(GhlInstallation).values(inactive_until=utcnow() - timedelta(seconds=1))
        )


@respx.mock
async def test_an_uninstalled_or_unknown_location_needs_an_install(provider, sessionmaker):
    token_route = respx.post(f"{API}/oauth/token")
    with pytest.raises(GhlNotInstalled, match="no GHL install for location loc_never_installed"):
        await provider.access_token("loc_never_installed_0001")
    assert token_route.call_count == 0


@respx.mock
async def test_an_agency_location_token_is_minted_from_a_refreshed_company_token(
    provider, sessionmaker, cipher
):
    token_route = respx.post(f"{API}/oauth/token").mock(
        return_value=httpx.Response(
            200, json=grant("at_company_new", "rt_company_2", userType="Company", locationId=None)
        )
    )
    mint_route = respx.post(f"{API}/oauth/locationToken").mock(
        return_value=httpx.Response(200, json=grant("at_location_minted"))
    )
    await seed_agency(
        sessionmaker, cipher, access="at_company_old", refresh="rt_company_1", expires_in=-5
    )
    await seed_location(sessionmaker, cipher, access=None, refresh=None, company_id=COMPANY)

    assert await provider.access_token(LOCATION) == "at_location_minted"

    refresh_form = parse_qs(token_route.calls.last.request.content.decode())
    assert refresh_form["user_type"] == ["Company"]
    assert refresh_form["refresh_token"] == ["rt_company_1"]
    mint = mint_route.calls.last.request
    assert mint.headers["Authorization"] == "Bearer at_company_new"
    assert mint.headers["Version"] == "2021-07-28"
    assert parse_qs(mint.content.decode()) == {"companyId": [COMPANY], "locationId": [LOCATION]}
    agency = await installation(sessionmaker, None, COMPANY)
    assert agency is not None and cipher.decrypt(agency.refresh_token_enc or "") == "rt_company_2"
    location = await installation(sessionmaker)
    assert location is not None and location.refresh_token_enc is None
    assert cipher.decrypt(location.access_token_enc or "") == "at_location_minted"

    # Rejected later: a new one is minted with the (still valid) company token.
    mint_route.mock(return_value=httpx.Response(200, json=grant("at_location_2")))
    await provider.token_rejected(LOCATION, "at_location_minted")
    assert await provider.access_token(LOCATION) == "at_location_2"
    assert token_route.call_count == 1 and mint_route.call_count == 2


@respx.mock
async def test_a_dead_agency_refresh_token_marks_agency_and_location(
    provider, sessionmaker, cipher
):
    respx.post(f"{API}/oauth/token").mock(return_value=INVALID_GRANT)
    await seed_agency(sessionmaker, cipher, access="at_c", refresh="rt_c", expires_in=-5)
    await seed_location(sessionmaker, cipher, access=None, refresh=None, company_id=COMPANY)
    with pytest.raises(GhlNeedsReauth):
        await provider.access_token(LOCATION)
    agency = await installation(sessionmaker, None, COMPANY)
    location = await installation(sessionmaker)
    assert agency is not None and agency.needs_reauth
    assert location is not None and location.needs_reauth


@respx.mock
async def test_key_rotation_reads_old_rows_and_rewrites_them_under_the_new_key(
    database_url, sessionmaker, http
):
    old_only = TokenCipher([KEY_OLD])
    await seed_location(sessionmaker, old_only, access="at_1", refresh="rt_1", expires_in=-5)
    rotated = oauth_settings(database_url, API, token_encryption_key=f"{KEY_NEW}, {KEY_OLD}")
    respx.post(f"{API}/oauth/token").mock(
        return_value=httpx.Response(200, json=grant("at_2", "rt_2"))
    )
    provider = DbTokenProvider(
        sessionmaker, GhlOAuth(http, rotated), TokenCipher.from_settings(rotated), rotated
    )

    assert await provider.access_token(LOCATION) == "at_2"  # the old-key refresh token opened

    row = await installation(sessionmaker)
    assert row is not None
    new_only = TokenCipher([KEY_NEW])
    assert new_only.decrypt(row.access_token_enc or "") == "at_2"
    assert new_only.decrypt(row.refresh_token_enc or "") == "rt_2"


@respx.mock
async def test_a_read_under_the_lock_moves_an_old_key_pair_to_the_new_key(
    database_url, sessionmaker, http
):
    await seed_location(sessionmaker, TokenCipher([KEY_OLD]), access="at_1", refresh="rt_1")
    rotated = oauth_settings(database_url, API, token_encryption_key=f"{KEY_NEW},{KEY_OLD}")
    provider = DbTokenProvider(
        sessionmaker, GhlOAuth(http, rotated), TokenCipher.from_settings(rotated), rotated
    )
    assert await provider.access_token(LOCATION) == "at_1"
    row = await installation(sessionmaker)
    assert row is not None
    assert TokenCipher([KEY_NEW]).decrypt(row.refresh_token_enc or "") == "rt_1"


async def test_a_removed_key_is_reported_in_words_not_marked(sessionmaker, database_url, http):
    await seed_location(sessionmaker, TokenCipher([KEY_OLD]), access="at_1", refresh="rt_1")
    only_new = oauth_settings(database_url, API, token_encryption_key=KEY_NEW)
    provider = DbTokenProvider(
        sessionmaker, GhlOAuth(http, only_new), TokenCipher.from_settings(only_new), only_new
    )
    with pytest.raises(GhlNeedsReauth, match="cannot be decrypted"):
        await provider.access_token(LOCATION)
    row = await installation(sessionmaker)
    assert row is not None and not row.needs_reauth  # putting the key back fixes it


def test_a_bad_encryption_key_is_a_config_error_that_does_not_echo_it():
    with pytest.raises(ConfigError, match="key #2 is not a Fernet key") as caught:
        TokenCipher([KEY_NEW, "not-a-key-at-all-but-secret"])
    assert "not-a-key-at-all-but-secret" not in str(caught.value)


async def test_pit_mode_uses_the_static_token_and_oauth_mode_the_database(
    database_url, sessionmaker, http
):
    from tests.conftest import make_settings

    pit = make_settings(database_url, ghl_private_token="pit-token-value", ghl_location_id=LOCATION)
    provider = build_token_provider(pit, sessionmaker, http)
    assert isinstance(provider, StaticTokenProvider)
    assert await provider.access_token(LOCATION) == "pit-token-value"
    assert isinstance(
        build_token_provider(oauth_settings(database_url), sessionmaker, http), DbTokenProvider
    )
    with pytest.raises(ConfigError, match="GHL_LOCATION_ID"):
        build_token_provider(make_settings(database_url, ghl_private_token="x"), sessionmaker, http)
