"""`wizesync doctor --go-live`: each production need green or red with the fix in words, a signed
webhook round trip through the running service, Slack probed without posting."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

import httpx
import pytest
import respx
from typer.testing import CliRunner

from tests.conftest import make_settings
from tests.test_try_it import SERVICE_VARIABLES
from wizesync.cli import app
from wizesync.config import Settings
from wizesync.doctor.golive import (
    database_engine,
    https_urls,
    mapping_online,
    production_settings,
    secret_strength,
    service_round_trip,
    slack_reachable,
    webhook_keys,
)

SLACK = "https://hooks.slack.com/services/T000/B000/XXXX"
STRONG_TOKEN = secrets.token_urlsafe(32)
STRONG_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def production(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "wizesync_env": "production",
        "_env_file": None,
        "database_url": "postgresql+asyncpg://wizesync:pw@db.internal/wizesync",
        "admin_token": STRONG_TOKEN,
        "wizehire_webhook_secret": STRONG_SECRET,
        "wizehire_api_url": "https://api.wizehire.example/",
        "wizehire_api_key": "k" * 40,
        "ghl_private_token": "pit-" + secrets.token_hex(16),
        "ghl_location_id": "Loc0000000000000000a",
        "slack_webhook_url": SLACK,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def reds(checks: list[tuple[bool, str, str]]) -> list[str]:
    return [f"{name}: {message}" for ok, name, message in checks if not ok]


def test_a_production_configuration_passes_the_configuration_checks() -> None:
    settings = production()
    checks = [
        *production_settings(settings),
        *secret_strength(settings),
        *https_urls(settings),
        database_engine(settings),
        *webhook_keys(settings),
    ]
    assert reds(checks) == []
    names = {name for _, name, _ in checks}
    assert {
        "production mode",
        "admin token strength",
        "postgresql",
        "ghl signing key",
        "WIZEHIRE_API_URL https",
        "GHL_API_URL https",
        "SLACK_WEBHOOK_URL https",
    } <= names


def test_weak_secrets_plain_urls_sqlite_and_a_foreign_key_are_red_with_the_fix(
    tmp_path: Path,
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other_key = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/x.db",
        admin_token="short-token",
        wizehire_webhook_secret="whsec_" + base64.b64encode(b"0123456789").decode(),
        wizehire_api_url="http://wizehire.example",
        ghl_client_id="app",
        ghl_client_secret="s",
        ghl_redirect_uri="http://svc.example/oauth/ghl/callback",
        token_encryption_key="not-a-fernet-key",
        ghl_webhook_public_key=other_key,
        metrics_token="a" * 40,
    )
    found = "\n".join(
        reds(
            [
                *production_settings(settings),
                *secret_strength(settings),
                *https_urls(settings),
                database_engine(settings),
                *webhook_keys(settings),
            ]
        )
    )
    assert "WIZESYNC_ENV is test: set WIZESYNC_ENV=production" in found
    assert "ADMIN_TOKEN is weak (11 characters; use at least 32); generate one" in found
    assert "METRICS_TOKEN is weak (only 1 distinct characters" in found
    assert "the key is 10 bytes; Standard Webhooks secrets are 24 to 64 random bytes" in found
    assert "TOKEN_ENCRYPTION_KEY holds a value that is not a Fernet key" in found
    assert "WIZEHIRE_API_URL is http (http://wizehire.example): use its https URL" in found
    assert "GHL_REDIRECT_URI is http" in found
    assert "DATABASE_URL is sqlite: production needs PostgreSQL" in found
    assert "GHL_WEBHOOK_PUBLIC_KEY is not GHL's published Ed25519 key" in found
    assert "production guard: GHL_REDIRECT_URI must be https" in found


def test_no_admin_token_is_red() -> None:
    settings = make_settings("sqlite+aiosqlite:///:memory:")
    assert any(
        "ADMIN_TOKEN is not set: /sync-status and /admin/* are open" in r
        for r in reds(secret_strength(settings))
    )


async def test_no_mapping_file_is_red_and_says_how_to_write_one() -> None:
    (check,) = await mapping_online(make_settings("sqlite+aiosqlite:///:memory:"))
    assert check[0] is False
    assert "wizesync mapping init --location <id>" in check[2]


async def test_an_invalid_mapping_file_is_red_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("orders: {strategy: sometimes}\n")
    (check,) = await mapping_online(
        make_settings("sqlite+aiosqlite:///:memory:", mapping_file=str(path))
    )
    assert check[0] is False and "orders.strategy" in check[2]


# --- Slack ---------------------------------------------------------------------------------------


@respx.mock
@pytest.mark.parametrize(
    ("status", "body", "ok", "words"),
    [
        (400, "no_text", True, "nothing was posted"),
        (404, "no_service", False, "Slack refuses the webhook (404 no_service): make a new"),
        (403, "invalid_token", False, "Slack refuses the webhook (403 invalid_token)"),
        (500, "oops", False, "Slack answered 500"),
    ],
)
async def test_slack_is_probed_without_posting_a_message(
    status: int, body: str, ok: bool, words: str
) -> None:
    route = respx.post(SLACK).respond(status, text=body)
    async with httpx.AsyncClient() as client:
        result = await slack_reachable(production(), client)
    assert result[0] is ok and words in result[2]
    assert route.calls.last.request.content == b"{}"


async def test_no_slack_is_red() -> None:
    async with httpx.AsyncClient() as client:
        result = await slack_reachable(production(slack_webhook_url=None), client)
    assert result[0] is False and "SLACK_WEBHOOK_URL is not set" in result[2]


# --- the running service -------------------------------------------------------------------------


async def test_signed_webhook_round_trip_through_the_service_inbox(
    client_factory, database_url: str
) -> None:
    service = make_settings(
        database_url, admin_token=STRONG_TOKEN, wizehire_webhook_secret=STRONG_SECRET
    )
    client = await client_factory(service)
    checks = await service_round_trip(service, "http://test", client)
    trip = next(c for c in checks if c[1] == "webhook round trip")
    assert trip[0] is True, trip
    assert "verified, stored (inbox event" in trip[2]
    listed = (
        await client.get(
            "/admin/events",
            params={"status": "ignored"},
            headers={"authorization": f"Bearer {STRONG_TOKEN}"},
        )
    ).json()
    assert [e["type"] for e in listed["data"]] == ["wizesync.golive.ping"]


async def test_round_trip_says_when_the_secret_or_the_admin_token_differ(
    client_factory, database_url: str
) -> None:
    service = make_settings(
        database_url, admin_token=STRONG_TOKEN, wizehire_webhook_secret=STRONG_SECRET
    )
    client = await client_factory(service)
    other_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    wrong_secret = make_settings(
        database_url, admin_token=STRONG_TOKEN, wizehire_webhook_secret=other_secret
    )
    trip = (await service_round_trip(wrong_secret, "http://test", client))[-1]
    assert trip[0] is False and "the service refused the signature" in trip[2]
    wrong_token = make_settings(
        database_url, admin_token="x" * 40, wizehire_webhook_secret=STRONG_SECRET
    )
    trip = (await service_round_trip(wrong_token, "http://test", client))[-1]
    assert trip[0] is False and "refused ADMIN_TOKEN" in trip[2]


async def test_an_unreachable_service_is_red_in_words() -> None:
    async with httpx.AsyncClient() as client:
        (check,) = await service_round_trip(production(), "http://127.0.0.1:9", client)
    assert check[0] is False and "cannot reach the service at http://127.0.0.1:9" in check[2]


def test_doctor_go_live_exits_non_zero_listing_every_red(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in list(os.environ):
        if SERVICE_VARIABLES.match(name):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    env = {"COLUMNS": "300", "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/d.db"}
    assert CliRunner().invoke(app, ["migrate"], env=env).exit_code == 0
    result = CliRunner().invoke(
        app, ["doctor", "--go-live", "--url", "http://127.0.0.1:9"], env=env
    )
    assert result.exit_code == 1
    out = result.stdout
    assert "✓ migrations: at head" in out  # doctor's own checks come first
    for red in (
        "✗ production mode",
        "✗ admin token",
        "✗ postgresql",
        "✗ mapping",
        "✗ service",
        "✗ slack",
    ):
        assert red in out, out
