"""GHL's INSTALL and UNINSTALL webhooks, end to end through the inbox and the in-process worker:
installations stay current, an uninstall drops the tokens, late deliveries change nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.ghl.kit import (
    COMPANY,
    KEY_OLD,
    LOCATION,
    LOCATION_2,
    installation,
    oauth_settings,
    seed_agency,
    seed_location,
)
from tests.support.signing import ghl_request
from tests.support.waiting import wait_for_status
from wizesync.ghl.crypto import TokenCipher
from wizesync.ghl.errors import GhlNeedsReauth
from wizesync.ghl.oauth import GhlOAuth
from wizesync.ghl.tokens import DbTokenProvider

APP = "app00000000000000000000e"
cipher = TokenCipher([KEY_OLD])


@pytest.fixture
async def client(client_factory, database_url):  # type: ignore[no-untyped-def]
    return await client_factory(oauth_settings(database_url))


async def deliver(
    client: httpx.AsyncClient,
    sessionmaker: Any,
    event_type: str,
    *,
    at: datetime | None = None,
    **ids: str,
) -> None:
    payload = {
        "type": event_type,
        "appId": APP,
        "webhookId": str(uuid.uuid4()),
        "timestamp": (at or datetime.now(UTC)).isoformat(),
        **ids,
    }
    body, headers = ghl_request(payload)
    response = await client.post("/webhooks/ghl", content=body, headers=headers)
    assert response.status_code == 202, response.text
    await wait_for_status(sessionmaker, response.json()["id"], "done")


async def test_install_event_records_a_new_location(client, sessionmaker):
    await deliver(client, sessionmaker, "INSTALL", locationId=LOCATION, companyId=COMPANY)
    row = await installation(sessionmaker)
    assert row is not None and row.installed_at is not None and row.uninstalled_at is None
    assert row.company_id == COMPANY and row.app_id == APP
    assert row.access_token_enc is None  # tokens come with the OAuth callback


async def test_uninstall_drops_the_tokens_and_calls_then_need_an_install(
    client, sessionmaker, database_url
):
    await seed_location(sessionmaker, cipher, access="at_1", refresh="rt_1")
    await deliver(client, sessionmaker, "UNINSTALL", locationId=LOCATION)

    row = await installation(sessionmaker)
    assert row is not None and row.uninstalled_at is not None
    assert row.access_token_enc is None and row.refresh_token_enc is None
    conf = oauth_settings(database_url)
    async with httpx.AsyncClient() as http:
        provider = DbTokenProvider(sessionmaker, GhlOAuth(http, conf), cipher, conf)
        with pytest.raises(GhlNeedsReauth, match="uninstalled"):
            await provider.access_token(LOCATION)
    status = (await client.get("/sync-status")).json()["installations"]
    assert [(e["location_id"], e["token_source"]) for e in status] == [(LOCATION, "none")]

    # Installed again: the row is current again (its tokens come with the next callback).
    await deliver(client, sessionmaker, "INSTALL", locationId=LOCATION)
    row = await installation(sessionmaker)
    assert row is not None and row.uninstalled_at is None


async def test_a_late_uninstall_from_before_a_reinstall_changes_nothing(client, sessionmaker):
    await seed_location(sessionmaker, cipher, access="at_1", refresh="rt_1")  # installed now
    await deliver(
        client,
        sessionmaker,
        "UNINSTALL",
        locationId=LOCATION,
        at=datetime.now(UTC) - timedelta(minutes=2),
    )
    row = await installation(sessionmaker)
    assert row is not None and row.uninstalled_at is None
    assert cipher.decrypt(row.access_token_enc or "") == "at_1"


async def test_a_late_install_does_not_undo_a_newer_uninstall(client, sessionmaker):
    await seed_location(sessionmaker, cipher, access="at_1", refresh="rt_1")
    await deliver(client, sessionmaker, "UNINSTALL", locationId=LOCATION)
    await deliver(
        client,
        sessionmaker,
        "INSTALL",
        locationId=LOCATION,
        at=datetime.now(UTC) - timedelta(minutes=2),
    )
    row = await installation(sessionmaker)
    assert row is not None and row.uninstalled_at is not None


async def test_an_agency_uninstall_ends_the_locations_it_minted_for(client, sessionmaker):
    await seed_agency(sessionmaker, cipher, access="at_c", refresh="rt_c")
    await seed_location(sessionmaker, cipher, access="at_minted", refresh=None, company_id=COMPANY)
    await seed_location(
        sessionmaker,
        cipher,
        location_id=LOCATION_2,
        access="at_own",
        refresh="rt_own",
        company_id=COMPANY,
    )

    await deliver(client, sessionmaker, "UNINSTALL", companyId=COMPANY)

    agency = await installation(sessionmaker, None, COMPANY)
    minted = await installation(sessionmaker, LOCATION)
    own = await installation(sessionmaker, LOCATION_2)
    assert agency is not None and agency.refresh_token_enc is None and agency.uninstalled_at
    assert minted is not None and minted.access_token_enc is None and minted.uninstalled_at
    # A location installed on its own keeps its install.
    assert own is not None and own.uninstalled_at is None
    assert cipher.decrypt(own.refresh_token_enc or "") == "rt_own"
