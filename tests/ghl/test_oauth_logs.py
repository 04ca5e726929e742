"""No token or secret in the logs, at DEBUG: an install, a refresh, a rejected refresh token, over
real HTTP (so httpx and httpcore log at DEBUG too), every record formatted as the service
formats it."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import update

from tests.ghl.fake_oauth_server import FakeOAuthServer, Subject
from tests.ghl.kit import CLIENT_SECRET, KEY_OLD, LOCATION, oauth_settings
from wizesync.db.base import utcnow
from wizesync.db.ghl_models import GhlInstallation
from wizesync.ghl.crypto import TokenCipher
from wizesync.ghl.errors import GhlNeedsReauth
from wizesync.ghl.oauth import GhlOAuth
from wizesync.ghl.tokens import DbTokenProvider
from wizesync.logs import JsonFormatter


async def test_no_token_or_secret_is_logged_at_debug(
    caplog: pytest.LogCaptureFixture, client_factory, database_url, sessionmaker
) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeOAuthServer(latency=0) as fake:
        admin = "oauth-logs-admin-token-0123456789abcdef"
        conf = oauth_settings(
            database_url, fake.url, log_level="DEBUG", worker="off", admin_token=admin
        )
        client = await client_factory(conf)
        client.headers["Authorization"] = f"Bearer {admin}"
        client.base_url = httpx.URL("https://test")  # the install cookie is Secure
        fake.state.codes["code-very-secret-1"] = Subject("Location", LOCATION, "cmp1")

        install = await client.get("/oauth/ghl/install")
        state = parse_qs(urlsplit(install.headers["location"]).query)["state"][0]
        done = await client.get(
            "/oauth/ghl/callback", params={"code": "code-very-secret-1", "state": state}
        )
        assert done.status_code == 200, done.text
        first_access, first_refresh = (
            fake.state.issued_access[-1],
            next(iter(fake.state.refresh_tokens)),
        )

        async with httpx.AsyncClient() as http:
            provider = DbTokenProvider(
                sessionmaker, GhlOAuth(http, conf), TokenCipher.from_settings(conf), conf
            )
            await provider.token_rejected(LOCATION, first_access)  # refresh over HTTP
            second_access = await provider.access_token(LOCATION)
            second_refresh = next(iter(fake.state.refresh_tokens))
            # Put the dead refresh token back and expire the access token: invalid_grant.
            async with sessionmaker.begin() as session:
                await session.execute(
                    update(GhlInstallation).values(
                        refresh_token_enc=TokenCipher([KEY_OLD]).encrypt(first_refresh),
                        expires_at=utcnow() - timedelta(seconds=1),
                    )
                )
            provider.forget(LOCATION)
            with pytest.raises(GhlNeedsReauth):
                await provider.access_token(LOCATION)

    secrets = [
        admin,
        CLIENT_SECRET,
        KEY_OLD,
        "code-very-secret-1",
        state,
        first_access,
        first_refresh,
        second_access,
        second_refresh,
    ]
    formatter = JsonFormatter()
    # What the service writes: every record through its JSON formatter (uvicorn's access log
    # too, which would show the callback's query string).
    lines = [formatter.format(record) for record in caplog.records]
    # The log is not empty: the OAuth calls and the refresh were logged at DEBUG/INFO.
    assert any("GHL OAuth call" in line for line in lines)
    assert any("renewed" in line for line in lines)
    assert any("needs re-authorisation" in line for line in lines)
    for secret in secrets:
        leaks = [line for line in lines if secret in line]
        assert not leaks, f"a secret is in the log: {leaks[:2]}"
