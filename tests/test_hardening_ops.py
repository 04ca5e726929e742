"""Operator-facing hardening: redaction of more credential shapes, `serve` refusing to expose a
development service, and `wizesync tokens reencrypt` after a TOKEN_ENCRYPTION_KEY rotation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from tests.ghl.kit import KEY_NEW, KEY_OLD, LOCATION, LOCATION_2, installation, seed_location
from wizesync.ghl.crypto import TokenCipher
from wizesync.logs import REDACTED, redact_text

# --- redaction -----------------------------------------------------------------------------------

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJsb2NhdGlvbklkIjoibG9jMSJ9.c2lnbmF0dXJlLXBhcnQ"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"),
        ("authorization: basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"),
        (f"calling GHL with {JWT} now", JWT),
        (f'{{"token_hint": "{JWT}"}}', JWT),
        ("GET /v1/orders?api_key=sk_live_abc123&limit=5", "sk_live_abc123"),
        ('{"api-key": "wz-9f8e7d"}', "wz-9f8e7d"),
        ("apikey=plain-key-42 rest", "plain-key-42"),
        ("postgresql+asyncpg://wizesync:p@ss@w0rd@db.internal:5432/wz", "ss@w0rd"),
        ("https://user:pw@api.example.com/path@segment", "pw"),
    ],
)
def test_more_credential_shapes_are_redacted(text: str, secret: str) -> None:
    shown = redact_text(text)
    assert secret not in shown, shown
    assert REDACTED in shown


def test_url_redaction_keeps_the_host_and_ordinary_text_is_untouched() -> None:
    shown = redact_text("postgresql://wz:p@ss@db.internal:5432/wz")
    assert shown == f"postgresql://wz:{REDACTED}@db.internal:5432/wz"
    for text in ("basically fine", "an @ sign and https://example.com/a@b", "key rotation"):
        assert redact_text(text) == text


# --- serve ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20"])
def test_serve_refuses_a_non_loopback_host_outside_production(
    host: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import uvicorn

    from wizesync.cli import app

    monkeypatch.chdir(tmp_path)
    started: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: started.append(kw))
    env = {"WIZESYNC_ENV": "development", "WIZESYNC_EXPOSE_DEVELOPMENT": ""}

    refused = CliRunner().invoke(app, ["serve", "--host", host], env=env)
    assert refused.exit_code == 2, refused.output
    assert "refusing to serve development" in refused.output
    assert started == []

    told = CliRunner().invoke(app, ["serve", "--host", host, "--expose-development"], env=env)
    assert told.exit_code == 0, told.output
    by_env = CliRunner().invoke(
        app, ["serve", "--host", host], env={**env, "WIZESYNC_EXPOSE_DEVELOPMENT": "1"}
    )
    assert by_env.exit_code == 0, by_env.output
    loopback = CliRunner().invoke(app, ["serve", "--host", "127.0.0.1"], env=env)
    assert loopback.exit_code == 0, loopback.output
    assert [kw["host"] for kw in started] == [host, host, "127.0.0.1"]


# --- tokens reencrypt ----------------------------------------------------------------------------


async def test_tokens_reencrypt_moves_every_token_to_the_newest_key_and_reports_keys(
    database_url: str, sessionmaker: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from wizesync.cli import app

    old = TokenCipher([KEY_OLD])
    await seed_location(sessionmaker, old, location_id=LOCATION, access="at_1", refresh="rt_1")
    await seed_location(
        sessionmaker, TokenCipher([KEY_NEW]), location_id=LOCATION_2, access="at_2", refresh=None
    )
    monkeypatch.chdir(tmp_path)
    env = {
        "DATABASE_URL": database_url,
        "WIZESYNC_ENV": "test",
        "TOKEN_ENCRYPTION_KEY": f"{KEY_NEW},{KEY_OLD}",
        "COLUMNS": "300",
    }

    result = await asyncio.to_thread(CliRunner().invoke, app, ["tokens", "reencrypt"], env=env)

    assert result.exit_code == 0, result.output
    assert "key #1 (newest): 1 token(s) before" in result.stdout
    assert "key #2: 2 token(s) before" in result.stdout
    assert "rewritten under key #1: 2" in result.stdout
    assert "can be removed" in result.stdout
    only_new = TokenCipher([KEY_NEW])
    for location, access, refresh in ((LOCATION, "at_1", "rt_1"), (LOCATION_2, "at_2", None)):
        row = await installation(sessionmaker, location)
        assert row is not None and row.access_token_enc
        assert only_new.decrypt(row.access_token_enc) == access
        if refresh:
            assert only_new.decrypt(row.refresh_token_enc) == refresh

    again = await asyncio.to_thread(CliRunner().invoke, app, ["tokens", "reencrypt"], env=env)
    assert "rewritten under key #1: 0" in again.stdout

    stranger = {**env, "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode()}
    lost = await asyncio.to_thread(CliRunner().invoke, app, ["tokens", "reencrypt"], env=stranger)
    assert lost.exit_code == 1
    assert "no configured key opens" in lost.stdout
