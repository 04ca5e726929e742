"""Settings named as the contract names them, `.env`, development defaults, the production guard,
secrets kept out of reprs, PEM paths; and the deployment files (.env.example, compose, Dockerfile).
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr, ValidationError

from tests.conftest import make_settings
from wizesync import samples
from wizesync.config import (
    DEV_ADMIN_TOKEN,
    DEV_MARKER,
    DEV_TOKEN_KEY,
    DEV_WIZEHIRE_API_URL,
    DEV_WIZEHIRE_SECRET,
    GHL_ED25519_PUBLIC_KEY,
    ConfigError,
    Settings,
)
from wizesync.devmode import SANDBOX_GHL_PUBLIC_KEY_PEM
from wizesync.signing import ghl_headers

FERNET = Fernet.generate_key().decode()

ROOT = Path(__file__).resolve().parent.parent
GHL_SPEC_KEY = ROOT.parent / "shared" / "ghl-openapi" / "ghl-webhook-ed25519-public-key.pem"

# The contract's configuration table: variable -> (Settings field, a value to set, parsed value).
CONTRACT_VARIABLES: dict[str, tuple[str, str, Any]] = {
    "DATABASE_URL": ("database_url", "postgresql+asyncpg://u@db.internal/wz", None),
    "WIZESYNC_ENV": ("wizesync_env", "test", None),
    "ADMIN_TOKEN": ("admin_token", "admin-from-env", None),
    "LOG_LEVEL": ("log_level", "DEBUG", None),
    "WIZEHIRE_WEBHOOK_SECRET": ("wizehire_webhook_secret", "whsec_c2VjcmV0LWZyb20tZW52", None),
    "WIZEHIRE_API_URL": ("wizehire_api_url", "https://api.wizehire.example/", None),
    "WIZEHIRE_API_KEY": ("wizehire_api_key", "wz-key-from-env", None),
    "WIZEHIRE_TOKEN_URL": ("wizehire_token_url", "https://auth.wizehire.example/token", None),
    "WIZEHIRE_CLIENT_ID": ("wizehire_client_id", "wz-client", None),
    "WIZEHIRE_CLIENT_SECRET": ("wizehire_client_secret", "wz-client-secret", None),
    "GHL_API_URL": ("ghl_api_url", "https://ghl.example", None),
    "GHL_API_VERSION": ("ghl_api_version", "v3", None),
    "GHL_CLIENT_ID": ("ghl_client_id", "ghl-client", None),
    "GHL_CLIENT_SECRET": ("ghl_client_secret", "ghl-client-secret", None),
    "GHL_REDIRECT_URI": ("ghl_redirect_uri", "https://sync.example/oauth/ghl/callback", None),
    "GHL_AUTHORIZE_URL": (
        "ghl_authorize_url",
        "https://marketplace.leadconnectorhq.com/oauth/chooselocation",
        None,
    ),
    "GHL_PRIVATE_TOKEN": ("ghl_private_token", "pit-from-env", None),
    "GHL_LOCATION_ID": ("ghl_location_id", "Z4Bxl8J4SaPEPLq9IQ8g", None),
    "GHL_WEBHOOK_PUBLIC_KEY": ("ghl_webhook_public_key", GHL_ED25519_PUBLIC_KEY, None),
    "GHL_WEBHOOK_RSA_PUBLIC_KEY": ("ghl_webhook_rsa_public_key", "@RSA_PEM@", None),
    "TOKEN_ENCRYPTION_KEY": ("token_encryption_key", "k1,k2", None),
    "SLACK_WEBHOOK_URL": ("slack_webhook_url", "https://hooks.slack.example/T/B/x", None),
    "MAPPING_FILE": ("mapping_file", "/etc/wizesync/mapping.yaml", None),
    "WORKER": ("worker", "off", None),
    "POLL_INTERVAL_SECONDS": ("poll_interval_seconds", "60", 60),
    "RECONCILE_CRON": ("reconcile_cron", "30 3 * * *", None),
}
WORKER_TUNING = [
    "WORKER_CONCURRENCY",
    "WORKER_LEASE_SECONDS",
    "WORKER_POLL_SECONDS",
    "WORKER_MAX_ATTEMPTS",
    "WORKER_BACKOFF_BASE_SECONDS",
    "WORKER_BACKOFF_MAX_SECONDS",
    "WORKER_HANDLER_MODULES",
]


def plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def rsa_public_pem() -> str:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No configuration from the machine running the tests: no variables, no `.env`."""
    for name in os.environ:
        if name in CONTRACT_VARIABLES or name.startswith(("WORKER_", "WEBHOOK_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def good_production(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "wizesync_env": "production",
        "database_url": "postgresql+asyncpg://wizesync:pw@db.internal/wizesync",
        "admin_token": secrets.token_urlsafe(24),
        "wizehire_webhook_secret": whsec(),
        "wizehire_api_url": "https://api.wizehire.com",
        "wizehire_api_key": "wz_live_key",
        "_env_file": None,
    }
    values.update(overrides)
    return values


# --- names and sources ----------------------------------------------------------------------------


@pytest.mark.parametrize("variable", sorted(CONTRACT_VARIABLES))
def test_each_contract_variable_sets_its_setting(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    field, value, parsed = CONTRACT_VARIABLES[variable]
    if value == "@RSA_PEM@":
        value = rsa_public_pem()
    monkeypatch.setenv(variable, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert plain(getattr(settings, field)) == (value if parsed is None else parsed)


def test_settings_are_read_from_a_dotenv_file_and_the_environment_wins(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / ".env").write_text(
        "ADMIN_TOKEN=from-dotenv\nWORKER=off\nPOLL_INTERVAL_SECONDS=42\n"
        "WIZEHIRE_API_URL=https://dotenv.wizehire.example\n"
    )
    settings = Settings()
    assert plain(settings.admin_token) == "from-dotenv"
    assert settings.worker == "off" and settings.poll_interval_seconds == 42
    monkeypatch.setenv("ADMIN_TOKEN", "from-environment")
    assert plain(Settings().admin_token) == "from-environment"


def test_an_empty_variable_counts_as_unset(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`FOO=` in a .env or a compose file means "not configured", not "the empty string"."""
    monkeypatch.setenv("WIZEHIRE_WEBHOOK_SECRET", "")
    monkeypatch.setenv("ADMIN_TOKEN", "")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.admin_token is None
    assert settings.wizehire_webhook_secrets == [DEV_WIZEHIRE_SECRET]


def test_development_runs_with_no_configuration_on_marked_development_values(
    clean_env: Path,
) -> None:
    from standardwebhooks.webhooks import Webhook

    settings = Settings()
    assert settings.wizesync_env == "development" and not settings.is_production
    assert settings.database_url == "sqlite+aiosqlite:///./wizesync.db"
    assert settings.admin_token is None
    assert settings.log_level == "INFO"
    assert settings.ghl_api_url == "https://services.leadconnectorhq.com"
    assert settings.ghl_api_version == "2021-07-28"
    assert settings.ghl_authorize_url == (
        "https://marketplace.gohighlevel.com/v2/oauth/chooselocation"
    )
    assert settings.ghl_webhook_rsa_public_key is None
    assert settings.worker == "inprocess"
    assert settings.poll_interval_seconds == 300
    assert settings.reconcile_cron == "0 2 * * *"
    # The development Wizehire secret: usable, and marked as development-only on sight.
    [secret] = settings.wizehire_webhook_secrets
    assert secret == DEV_WIZEHIRE_SECRET and secret.startswith("whsec_")
    assert DEV_MARKER in base64.b64decode(secret.removeprefix("whsec_")).decode()
    Webhook(secret)
    assert DEV_MARKER in DEV_ADMIN_TOKEN
    assert settings.wizehire_api_url == DEV_WIZEHIRE_API_URL
    assert DEV_WIZEHIRE_API_URL.startswith("http://127.0.0.1:")


def test_the_default_ghl_key_is_the_one_ghl_publishes(clean_env: Path) -> None:
    if not GHL_SPEC_KEY.exists():
        pytest.skip("the GHL OpenAPI folder is not next to this checkout")
    published = serialization.load_pem_public_key(GHL_SPEC_KEY.read_bytes())
    default = serialization.load_pem_public_key(Settings().ghl_public_key_pem.encode())
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert default.public_bytes(*raw) == published.public_bytes(*raw)


# --- the production guard -------------------------------------------------------------------------

REFUSALS = {
    "missing ADMIN_TOKEN": ({"admin_token": None}, "ADMIN_TOKEN is required"),
    "empty ADMIN_TOKEN": ({"admin_token": ""}, "ADMIN_TOKEN is required"),
    "development ADMIN_TOKEN": (
        {"admin_token": DEV_ADMIN_TOKEN},
        "ADMIN_TOKEN is a development placeholder",
    ),
    "placeholder ADMIN_TOKEN": (
        {"admin_token": "change-me"},
        "ADMIN_TOKEN is a development placeholder",
    ),
    "missing WIZEHIRE_WEBHOOK_SECRET": (
        {"wizehire_webhook_secret": None},
        "WIZEHIRE_WEBHOOK_SECRET is required",
    ),
    "blank WIZEHIRE_WEBHOOK_SECRET": (
        {"wizehire_webhook_secret": "  "},
        "WIZEHIRE_WEBHOOK_SECRET is required",
    ),
    "development WIZEHIRE_WEBHOOK_SECRET": (
        {"wizehire_webhook_secret": DEV_WIZEHIRE_SECRET},
        "WIZEHIRE_WEBHOOK_SECRET is a development",
    ),
    "development secret in a rotation": (
        {"wizehire_webhook_secret": f"{whsec()} {DEV_WIZEHIRE_SECRET}"},
        "WIZEHIRE_WEBHOOK_SECRET is a development",
    ),
    "missing WIZEHIRE_API_URL": ({"wizehire_api_url": None}, "WIZEHIRE_API_URL is required"),
    "localhost WIZEHIRE_API_URL": (
        {"wizehire_api_url": "http://localhost:8010/wizehire"},
        "WIZEHIRE_API_URL points at a sandbox",
    ),
    "sandbox WIZEHIRE_API_URL": (
        {"wizehire_api_url": "https://sandbox.wizehire.com"},
        "WIZEHIRE_API_URL points at a sandbox",
    ),
    "sandbox GHL_API_URL": (
        {"ghl_api_url": "http://127.0.0.1:8010/ghl"},
        "GHL_API_URL points at a sandbox",
    ),
    "http GHL_REDIRECT_URI": (
        {"ghl_redirect_uri": "http://sync.example.com/oauth/ghl/callback"},
        "GHL_REDIRECT_URI must be https",
    ),
    "OAuth without TOKEN_ENCRYPTION_KEY": (
        {
            "ghl_client_id": "app-id",
            "ghl_client_secret": "app-secret",
            "ghl_redirect_uri": "https://sync.example.com/oauth/ghl/callback",
        },
        "TOKEN_ENCRYPTION_KEY is required in OAuth mode",
    ),
    # --- hardening: endpoints, database, secret strength, half-given OAuth ---
    "http WIZEHIRE_API_URL": (
        {"wizehire_api_url": "http://api.wizehire.com"},
        "WIZEHIRE_API_URL must be https",
    ),
    "[::1] WIZEHIRE_API_URL": (
        {"wizehire_api_url": "https://[::1]/wizehire"},
        "WIZEHIRE_API_URL points at a loopback address",
    ),
    "legacy-spelled loopback": (
        {"wizehire_api_url": "https://2130706433/"},
        "WIZEHIRE_API_URL points at a loopback address",
    ),
    "private WIZEHIRE_TOKEN_URL": (
        {
            "wizehire_token_url": "https://10.1.2.3/token",
            "wizehire_client_id": "c",
            "wizehire_client_secret": "s",
        },
        "WIZEHIRE_TOKEN_URL points at a private address",
    ),
    "link-local GHL_AUTHORIZE_URL": (
        {"ghl_authorize_url": "https://169.254.169.254/x"},
        "GHL_AUTHORIZE_URL points at a link-local address",
    ),
    "http SLACK_WEBHOOK_URL": (
        {"slack_webhook_url": "http://hooks.slack.com/services/T/B/x"},
        "SLACK_WEBHOOK_URL must be https",
    ),
    "mapped loopback SLACK_WEBHOOK_URL": (
        {"slack_webhook_url": "https://[::ffff:127.0.0.1]/services/T/B/x"},
        "SLACK_WEBHOOK_URL points at a loopback address",
    ),
    "sandbox STRIPE_API_BASE": (
        {"stripe_api_base": "http://127.0.0.1:8010/stripe"},
        "STRIPE_API_BASE must be https",
    ),
    "loopback NMI_API_URL": (
        {"nmi_api_url": "https://127.0.0.1/nmi/api/transact.php"},
        "NMI_API_URL points at a loopback address",
    ),
    "private AUTHNET_API_URL": (
        {"authnet_api_url": "https://192.168.1.5/xml/v1/request.api"},
        "AUTHNET_API_URL points at a private address",
    ),
    "SQLite": ({"database_url": "sqlite+aiosqlite:///./wizesync.db"}, "DATABASE_URL is SQLite"),
    "short ADMIN_TOKEN": ({"admin_token": "x" * 31}, "ADMIN_TOKEN must be at least 32"),
    "non-ASCII ADMIN_TOKEN": ({"admin_token": "é" * 40}, "ADMIN_TOKEN must be at least 32"),
    "short WIZEHIRE_WEBHOOK_SECRET": (
        {"wizehire_webhook_secret": "whsec_" + base64.b64encode(b"x" * 23).decode()},
        "at least 24 bytes",
    ),
    "sandbox GHL_WEBHOOK_PUBLIC_KEY": (
        {"ghl_webhook_public_key": SANDBOX_GHL_PUBLIC_KEY_PEM},
        "GHL_WEBHOOK_PUBLIC_KEY is the sandbox's key",
    ),
    "development TOKEN_ENCRYPTION_KEY": (
        {"token_encryption_key": DEV_TOKEN_KEY},
        "is the development key",
    ),
    "malformed TOKEN_ENCRYPTION_KEY": (
        {"token_encryption_key": f"{Fernet.generate_key().decode()},not-a-key"},
        "key #2 is not a Fernet key",
    ),
    "OAuth half given": (
        {"ghl_client_id": "app-id", "token_encryption_key": FERNET},
        "GHL OAuth settings are half given",
    ),
    "OAuth without GHL_APP_ID": (
        {
            "ghl_client_id": "app-id",
            "ghl_client_secret": "app-secret",
            "ghl_redirect_uri": "https://sync.example.com/oauth/ghl/callback",
            "token_encryption_key": FERNET,
        },
        "GHL_APP_ID missing",
    ),
    "Wizehire OAuth half given": (
        {"wizehire_client_id": "wz-client"},
        "Wizehire OAuth settings are half given",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_production_refuses_to_start(case: str) -> None:
    overrides, message = REFUSALS[case]
    with pytest.raises((ValidationError, ConfigError)) as caught:
        Settings(**good_production(**overrides))
    assert "refusing to start in production" in str(caught.value)
    assert message in str(caught.value)


def test_production_from_the_environment_lists_every_missing_secret(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WIZESYNC_ENV", "production")
    monkeypatch.setenv("ADMIN_TOKEN", "")
    with pytest.raises((ValidationError, ConfigError)) as caught:
        Settings()
    text = str(caught.value)
    for message in (
        "ADMIN_TOKEN is required",
        "WIZEHIRE_WEBHOOK_SECRET is required",
        "WIZEHIRE_API_URL is required",
    ):
        assert message in text


def test_a_good_production_config_is_accepted(clean_env: Path) -> None:
    settings = Settings(**good_production())
    assert settings.is_production
    oauth = Settings(
        **good_production(
            ghl_client_id="app-id",
            ghl_client_secret="app-secret",
            ghl_redirect_uri="https://sync.example.com/oauth/ghl/callback",
            ghl_app_id="ve9EPM428h8vShlRW1KT",
            token_encryption_key=FERNET,
            slack_webhook_url="https://hooks.slack.com/services/T/B/x",
        )
    )
    assert oauth.ghl_client_id == "app-id"
    assert not settings.api_docs_enabled
    assert Settings(**good_production(expose_api_docs=True)).api_docs_enabled
    sqlite = Settings(
        **good_production(
            database_url="sqlite+aiosqlite:///./w.db", allow_sqlite_in_production=True
        )
    )
    assert sqlite.database_url.startswith("sqlite")


async def test_a_good_production_config_starts_and_trusts_no_sandbox_key(
    client_factory, database_url: str, engine
) -> None:
    values = good_production(
        database_url=database_url, worker="off", allow_sqlite_in_production=True
    )
    values.pop("_env_file")
    values["ghl_webhook_public_key"] = GHL_ED25519_PUBLIC_KEY
    client = await client_factory(make_settings(**values))
    assert (await client.get("/health")).json() == {"status": "ok"}
    # The API's map is not published in production unless EXPOSE_API_DOCS asks.
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert (await client.get(path)).status_code == 404, path
    body = b'{"type": "OrderCreate", "_id": "abc"}'
    response = await client.post("/webhooks/ghl", content=body, headers=ghl_headers(body))
    assert response.status_code == 401  # signed with the public sandbox key: refused


# --- secrets stay secret --------------------------------------------------------------------------


def test_no_secret_appears_in_the_settings_repr_or_str(clean_env: Path) -> None:
    values = {
        "admin_token": "sekrit-admin-0001",
        "wizehire_webhook_secret": "whsec_c2Vrcml0LXdpemVoaXJlLTAwMDI=",
        "wizehire_api_key": "sekrit-api-key-0003",
        "wizehire_client_secret": "sekrit-client-0004",
        "ghl_client_secret": "sekrit-ghl-client-0005",
        "ghl_private_token": "sekrit-pit-0006",
        "token_encryption_key": "sekrit-fernet-0007",
        "slack_webhook_url": "https://hooks.slack.com/services/T0/B0/sekrit0008",
        "database_url": "postgresql+asyncpg://wizesync:sekrit-db-0009@db.internal/wizesync",
    }
    settings = Settings(_env_file=None, **values)  # type: ignore[arg-type]
    shown = repr(settings) + str(settings)
    for secret in re.findall(r"sekrit[\w-]*|whsec_\w+", " ".join(values.values())):
        assert secret not in shown, secret


# --- GHL_WEBHOOK_PUBLIC_KEY -----------------------------------------------------------------------


async def test_ghl_public_key_may_be_a_path_to_a_pem_file(
    client_factory, database_url: str, engine, tmp_path: Path
) -> None:
    private = Ed25519PrivateKey.generate()
    pem_file = tmp_path / "ghl-key.pem"
    pem_file.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    values = good_production(
        database_url=database_url,
        worker="off",
        ghl_webhook_public_key=str(pem_file),
        allow_sqlite_in_production=True,
    )
    values.pop("_env_file")
    settings = make_settings(**values)
    assert settings.ghl_public_key_pem == pem_file.read_text()
    client = await client_factory(settings)
    body = samples_body()
    response = await client.post(
        "/webhooks/ghl", content=body, headers=ghl_headers(body, private_pem)
    )
    assert response.status_code == 202, response.text


def samples_body() -> bytes:
    import json

    return json.dumps(samples.ghl_event("OrderCreate")).encode()


@pytest.mark.parametrize("variable", ["GHL_WEBHOOK_PUBLIC_KEY", "GHL_WEBHOOK_RSA_PUBLIC_KEY"])
def test_an_unreadable_pem_path_is_a_clear_error_at_start(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    missing = clean_env / "keys" / "missing.pem"
    monkeypatch.setenv(variable, str(missing))
    with pytest.raises((ValidationError, ConfigError)) as caught:
        Settings(_env_file=None)  # type: ignore[call-arg]
    text = str(caught.value)
    assert variable in text and "cannot read PEM file" in text and str(missing) in text
    assert "No such file or directory" in text


# --- deployment files -----------------------------------------------------------------------------


def test_env_example_as_a_dotenv_is_production_and_refuses_until_filled_in(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / ".env").write_text((ROOT / ".env.example").read_text())
    with pytest.raises((ValidationError, ConfigError)) as caught:
        Settings()
    for message in (
        "ADMIN_TOKEN is required",
        "WIZEHIRE_WEBHOOK_SECRET is required",
        "DATABASE_URL is SQLite",
    ):
        assert message in str(caught.value)
    monkeypatch.setenv("WIZESYNC_ENV", "development")  # the environment wins over .env
    settings = Settings()
    assert settings.wizesync_env == "development"
    assert settings.wizehire_webhook_secrets == [DEV_WIZEHIRE_SECRET]
    assert settings.admin_token is None and settings.worker == "inprocess"
    assert settings.poll_interval_seconds == 300 and settings.reconcile_cron == "0 2 * * *"


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def as_command(value: Any) -> str:
    return " ".join(value) if isinstance(value, list) else str(value)


def test_compose_runs_postgres_migrate_api_and_worker_with_health_checks() -> None:
    services = compose()["services"]
    assert set(services) >= {"postgres", "migrate", "api", "worker"}

    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert "pg_isready" in as_command(postgres["healthcheck"]["test"])

    for name in ("migrate", "api", "worker"):
        service = services[name]
        assert "build" in service or "image" in service, name
        assert ".env" in str(service["env_file"]), name
        assert service["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://"), name
        assert "@postgres:5432/" in service["environment"]["DATABASE_URL"], name

    migrate = services["migrate"]
    assert as_command(migrate["command"]) == "migrate"  # the image's entrypoint is `wizesync`
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate.get("restart", "no") == "no"

    api = services["api"]
    assert as_command(api["command"]).startswith("serve")
    assert "--host 0.0.0.0" in as_command(api["command"])
    assert api["environment"]["WORKER"] == "off"
    assert "/health" in as_command(api["healthcheck"]["test"])
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert api["ports"]

    worker = services["worker"]
    assert as_command(worker["command"]) == "worker"
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "stop_grace_period" in worker


def test_dockerfile_installs_the_package_and_runs_as_a_non_root_user() -> None:
    text = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert any(
        re.match(r"FROM python:3\.11-slim(-bookworm)?@sha256:[0-9a-f]{64}( AS \w+)?$", line)
        for line in lines
    ), "the base image is pinned by digest"
    assert "pip install --require-hashes -r requirements-runtime.lock" in text
    assert "pip install --no-deps ." in text
    assert "WIZESYNC_ENV=production" in text
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert lines[[i for i, line in enumerate(lines) if line.startswith("ENTRYPOINT")][-1]] == (
        'ENTRYPOINT ["wizesync"]'
    )
    ignored = (ROOT / ".dockerignore").read_text().split()
    for name in (".env", ".venv", ".git", "*.db"):
        assert name in ignored, name
