"""Shared pieces of the GHL auth and rate-limit tests: settings, keys, seeded installations."""

from __future__ import annotations

import base64
import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import make_settings
from wizesync.config import Settings
from wizesync.db import install_repo
from wizesync.db.base import utcnow
from wizesync.db.ghl_models import GhlInstallation
from wizesync.db.install_repo import StoredTokens
from wizesync.ghl.crypto import TokenCipher

REPO_ROOT = Path(__file__).resolve().parents[2]
# Two fixed Fernet keys (32 bytes each, url-safe base64): tests and their subprocesses agree.
# They differ in BOTH halves: Fernet signs with the first 16 bytes and encrypts with the last 16,
# so keys sharing the signing half would let one key "verify" the other's tokens and, about once
# in 256 tries, decrypt them to garbage instead of refusing them.
KEY_OLD = base64.urlsafe_b64encode(b"old-wizesync-test-token-key-0001").decode()
KEY_NEW = base64.urlsafe_b64encode(b"new-wizesync-test-token-key-0002").decode()
CLIENT_ID = "client-for-tests"
CLIENT_SECRET = "cs_test_" + "s3cr3t" * 4
REDIRECT_URI = "https://wizesync.example.com/oauth/ghl/callback"
LOCATION = "loc0000000000000000000a1"
LOCATION_2 = "loc0000000000000000000b2"
COMPANY = "cmp0000000000000000000c3"


APP_ID = "app00000000000000000000e"  # the marketplace app's id, as INSTALL events name it


def oauth_settings(
    database_url: str, api_url: str = "https://ghl.test", **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "ghl_api_url": api_url,
        "ghl_client_id": CLIENT_ID,
        "ghl_client_secret": CLIENT_SECRET,
        "ghl_redirect_uri": REDIRECT_URI,
        "ghl_authorize_url": "https://marketplace.test/v2/oauth/chooselocation",
        "token_encryption_key": KEY_OLD,
        "ghl_app_id": APP_ID,
    }
    values.update(overrides)
    return make_settings(database_url, **values)


async def seed_location(
    sessionmaker: async_sessionmaker[AsyncSession],
    cipher: TokenCipher,
    *,
    location_id: str = LOCATION,
    access: str | None,
    refresh: str | None,
    expires_in: float = 86399,
    company_id: str | None = None,
) -> None:
    tokens = None
    if access is not None:
        tokens = StoredTokens(
            access_enc=cipher.encrypt(access),
            refresh_enc=cipher.encrypt(refresh) if refresh else None,
            expires_at=utcnow() + timedelta(seconds=expires_in),
            scopes="invoices.write",
        )
    async with sessionmaker.begin() as session:
        await install_repo.upsert_location(
            session, location_id=location_id, company_id=company_id, tokens=tokens
        )


async def seed_agency(
    sessionmaker: async_sessionmaker[AsyncSession],
    cipher: TokenCipher,
    *,
    access: str,
    refresh: str,
    expires_in: float = 86399,
    company_id: str = COMPANY,
) -> None:
    tokens = StoredTokens(
        cipher.encrypt(access),
        cipher.encrypt(refresh),
        utcnow() + timedelta(seconds=expires_in),
        "oauth.write",
    )
    async with sessionmaker.begin() as session:
        await install_repo.upsert_agency(session, company_id=company_id, tokens=tokens)


async def installation(
    sessionmaker: async_sessionmaker[AsyncSession],
    location_id: str | None = LOCATION,
    company_id: str | None = None,
) -> GhlInstallation | None:
    async with sessionmaker() as session:
        stmt = select(GhlInstallation)
        if location_id is not None:
            stmt = stmt.where(GhlInstallation.location_id == location_id)
        else:
            stmt = stmt.where(
                GhlInstallation.company_id == company_id, GhlInstallation.location_id.is_(None)
            )
        return (await session.execute(stmt)).scalar_one_or_none()


def subprocess_env(**extra: str) -> dict[str, str]:
    """A clean environment for our helper processes: nothing of the machine's wizesync config."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            (
                "WIZESYNC_",
                "WORKER",
                "DATABASE_URL",
                "GHL_",
                "WIZEHIRE_",
                "TOKEN_ENCRYPTION_KEY",
                "LOG_LEVEL",
                "ADMIN_TOKEN",
            )
        )
    }
    env.update(
        WIZESYNC_ENV="test",
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "src")]),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


PYTHON = sys.executable


class Helper:
    """One `python -m tests.ghl.<module>` process with its output in a file."""

    def __init__(self, module: str, args: list[str], env: dict[str, str], log: Path) -> None:
        import subprocess

        self.log = log
        self._out = log.open("wb")
        self.popen = subprocess.Popen(
            [PYTHON, "-m", f"tests.ghl.{module}", *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_for(self, text: str, timeout: float = 60.0) -> None:
        from tests.support.waiting import eventually

        async def seen() -> bool:
            if text in self.output():
                return True
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.popen.args} exited early:\n{self.output()[-3000:]}")
            return False

        await eventually(seen, timeout=timeout, interval=0.05, what=f"{text!r} from a helper")

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(10)
        self._out.close()


async def run_together(
    module: str,
    args: list[str],
    env: dict[str, str],
    tmp_path: Path,
    *,
    processes: int = 2,
    done_timeout: float = 60.0,
) -> list[Any]:
    """Start `processes` helpers of `module` with `args`, let them all go at once (the `--go`
    file), wait until each says "done", and return what each wrote to its `--out` file."""
    go = tmp_path / "go"
    helpers = [
        Helper(
            module,
            [*args, "--go", str(go), "--out", str(tmp_path / f"{n}.json")],
            env,
            tmp_path / f"proc{n}.log",
        )
        for n in range(processes)
    ]
    try:
        for helper in helpers:
            await helper.wait_for("ready")
        go.touch()
        for helper in helpers:
            await helper.wait_for("done", timeout=done_timeout)
    finally:
        for helper in helpers:
            helper.close()
    return [json.loads((tmp_path / f"{n}.json").read_text()) for n in range(processes)]
