"""Refresh is single-flight ACROSS PROCESSES: two worker processes, twenty concurrent calls
each, one expired (or rejected) token -> exactly one refresh reaches GHL, and every call gets the
new token. The fake token server is slow and rotates single-use refresh tokens, so a second
refresh of the same token would both show in its counter and be refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.ghl.fake_oauth_server import FakeOAuthServer, Subject
from tests.ghl.kit import (
    CLIENT_ID,
    CLIENT_SECRET,
    KEY_OLD,
    LOCATION,
    REDIRECT_URI,
    installation,
    run_together,
    seed_location,
    subprocess_env,
)
from wizesync.ghl.crypto import TokenCipher

pytestmark = pytest.mark.slow

CALLS = 20


@pytest.fixture
def fake_ghl() -> Iterator[FakeOAuthServer]:
    with FakeOAuthServer(latency=0.5) as server:
        yield server


async def _run_two(
    database_url: str, fake_ghl: FakeOAuthServer, tmp_path: Path, *, mode: str, stale: str = ""
) -> list[dict[str, str]]:
    env = subprocess_env(
        DATABASE_URL=database_url,
        GHL_API_URL=fake_ghl.url,
        GHL_CLIENT_ID=CLIENT_ID,
        GHL_CLIENT_SECRET=CLIENT_SECRET,
        GHL_REDIRECT_URI=REDIRECT_URI,
        TOKEN_ENCRYPTION_KEY=KEY_OLD,
    )
    per_process = await run_together(
        "token_proc",
        ["--location", LOCATION, "--calls", str(CALLS), "--mode", mode, "--stale", stale],
        env,
        tmp_path,
    )
    return [result for results in per_process for result in results]


async def test_two_processes_with_an_expired_token_refresh_exactly_once(
    database_url: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    fake_ghl: FakeOAuthServer,
    tmp_path: Path,
) -> None:
    cipher = TokenCipher([KEY_OLD])
    _, refresh = fake_ghl.state.seed(Subject("Location", LOCATION, "cmp1"))
    await seed_location(
        sessionmaker, cipher, access="at_expired_long_ago", refresh=refresh, expires_in=-60
    )

    results = await _run_two(database_url, fake_ghl, tmp_path, mode="expired")

    assert fake_ghl.state.refresh_calls == 1
    assert fake_ghl.state.refreshes_rejected == 0
    new_token = fake_ghl.state.issued_access[-1]
    assert results == [{"token": new_token}] * (2 * CALLS)
    row = await installation(sessionmaker)
    assert row is not None and not row.needs_reauth
    assert cipher.decrypt(row.access_token_enc or "") == new_token
    # The stored refresh token is the rotated one, and it is live at GHL.
    assert cipher.decrypt(row.refresh_token_enc or "") in fake_ghl.state.refresh_tokens


async def test_two_processes_told_the_token_was_rejected_refresh_exactly_once(
    database_url: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    fake_ghl: FakeOAuthServer,
    tmp_path: Path,
) -> None:
    cipher = TokenCipher([KEY_OLD])
    access, refresh = fake_ghl.state.seed(Subject("Location", LOCATION, "cmp1"))
    await seed_location(sessionmaker, cipher, access=access, refresh=refresh)  # not expired

    results = await _run_two(database_url, fake_ghl, tmp_path, mode="rejected", stale=access)

    assert fake_ghl.state.refresh_calls == 1
    new_token = fake_ghl.state.issued_access[-1]
    assert new_token != access
    assert results == [{"token": new_token}] * (2 * CALLS)
