"""Settings, read from the environment and `.env`, named exactly as the contract names them.

Development runs with no configuration at all: the few secrets it needs then take clearly marked
development values. `WIZESYNC_ENV=production` refuses to start with any of those, with a missing
secret, a sandbox URL or a non-https redirect URI.
"""

from __future__ import annotations

import base64
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# GHL's published Ed25519 key for `X-GHL-Signature` (from HighLevel's webhook docs).
GHL_ED25519_PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAi2HR1srL4o18O8BRa7gVJY7G7bupbN3H9AwJrHCDiOg=
-----END PUBLIC KEY-----
"""

# Development-only values: recognisable on sight, refused in production.
DEV_MARKER = "wizesync-development-only"
DEV_WIZEHIRE_SECRET = "whsec_" + base64.b64encode(f"{DEV_MARKER}-wizehire-secret".encode()).decode()
DEV_ADMIN_TOKEN = f"{DEV_MARKER}-admin-token"
DEV_WIZEHIRE_API_URL = "http://127.0.0.1:8010/wizehire"
SANDBOX_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0", "[::1]", "sandbox")


class ConfigError(ValueError):
    """The configuration cannot run; the message says what to change."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False,
        env_ignore_empty=True,  # `FOO=` in a .env or compose file means unset, not ""
    )

    # --- service -----------------------------------------------------------------------------
    wizesync_env: Literal["development", "test", "production"] = "development"
    # Kept out of repr: the URL may hold the database password.
    database_url: str = Field("sqlite+aiosqlite:///./wizesync.db", repr=False)
    admin_token: SecretStr | None = None
    log_level: str = "INFO"

    # --- Wizehire ----------------------------------------------------------------------------
    wizehire_webhook_secret: SecretStr | None = None
    wizehire_api_url: str | None = None
    wizehire_api_key: SecretStr | None = None
    wizehire_token_url: str | None = None
    wizehire_client_id: str | None = None
    wizehire_client_secret: SecretStr | None = None

    # --- GHL -----------------------------------------------------------------------------------
    ghl_api_url: str = "https://services.leadconnectorhq.com"
    ghl_api_version: str = "2021-07-28"
    ghl_client_id: str | None = None
    ghl_client_secret: SecretStr | None = None
    ghl_redirect_uri: str | None = None
    ghl_authorize_url: str = "https://marketplace.gohighlevel.com/v2/oauth/chooselocation"
    ghl_private_token: SecretStr | None = None
    ghl_location_id: str | None = None
    ghl_webhook_public_key: str = GHL_ED25519_PUBLIC_KEY
    ghl_webhook_rsa_public_key: str | None = None
    token_encryption_key: SecretStr | None = None
    # Per-location request budget shared by every process (GHL allows 100 per 10 s per location).
    ghl_rate_limit_max: int = Field(100, ge=1)
    ghl_rate_limit_window_seconds: float = Field(10.0, gt=0)
    # A call waits at most this long for budget, else it raises GhlRateLimited (retry later).
    ghl_rate_limit_max_wait_seconds: float = Field(120.0, gt=0)

    # --- integrations and schedules ------------------------------------------------------------
    slack_webhook_url: SecretStr | None = None
    mapping_file: str | None = None
    worker: Literal["inprocess", "off"] = "inprocess"
    poll_interval_seconds: int = Field(300, ge=5)
    reconcile_cron: str = "0 2 * * *"

    # --- worker tuning (not in the contract; defaults suit most deployments) -------------------
    worker_concurrency: int = Field(8, ge=1, le=256)
    worker_lease_seconds: float = Field(60.0, gt=0)
    worker_poll_seconds: float = Field(2.0, gt=0)
    worker_max_attempts: int = Field(12, ge=1)
    worker_backoff_base_seconds: float = Field(2.0, gt=0)
    worker_backoff_max_seconds: float = Field(3600.0, gt=0)
    # Done and ignored events (and their attempts) older than this are deleted daily beside the
    # worker; unset keeps them forever. See docs/ARCHITECTURE.md ("Retention").
    retention_days: int | None = Field(None, ge=1)
    # A GHL webhook falls due this long after it arrived (see inbox/ingest.py): GHL's webhooks
    # mostly report what our own calls just did, and the flow that made them reads GHL anyway.
    ghl_webhook_settle_seconds: float = Field(0.5, ge=0, le=60)
    # Extra handler modules to import (comma-separated), e.g. plugins or test handlers.
    worker_handler_modules: str = ""
    webhook_max_body_bytes: int = 1024 * 1024
    webhook_timestamp_tolerance_seconds: int = 300

    @model_validator(mode="after")
    def _development_defaults_and_production_guard(self) -> Settings:
        # PEM paths are read now, so a bad one stops the start with the variable's name.
        for variable, pem in (("GHL_WEBHOOK_PUBLIC_KEY", "ghl_public_key_pem"),
                              ("GHL_WEBHOOK_RSA_PUBLIC_KEY", "ghl_rsa_public_key_pem")):
            try:
                getattr(self, pem)
            except ConfigError as exc:
                raise ConfigError(f"{variable}: {exc}") from None
        if self.wizesync_env == "production":
            problems = self.production_problems()
            if problems:
                raise ConfigError(
                    "refusing to start in production: " + "; ".join(problems)
                )
            return self
        # Development and test: fill what is missing with marked development values.
        if self.wizehire_webhook_secret is None:
            self.wizehire_webhook_secret = SecretStr(DEV_WIZEHIRE_SECRET)
        if self.wizehire_api_url is None:
            self.wizehire_api_url = DEV_WIZEHIRE_API_URL
        return self

    def production_problems(self) -> list[str]:
        """Everything that makes this configuration unfit for production, in words."""
        problems: list[str] = []

        def is_dev(secret: SecretStr | None) -> bool:
            value = secret.get_secret_value() if secret else ""
            decoded = ""
            if value.startswith("whsec_"):
                try:
                    decoded = base64.b64decode(value[6:] + "==").decode(errors="ignore")
                except ValueError:
                    decoded = ""
            return DEV_MARKER in value or DEV_MARKER in decoded or "change-me" in value

        if self.admin_token is None or not self.admin_token.get_secret_value():
            problems.append("ADMIN_TOKEN is required")
        elif is_dev(self.admin_token):
            problems.append("ADMIN_TOKEN is a development placeholder")
        if not self.wizehire_webhook_secrets:
            problems.append("WIZEHIRE_WEBHOOK_SECRET is required")
        elif any(is_dev(SecretStr(s)) for s in self.wizehire_webhook_secrets):
            problems.append("WIZEHIRE_WEBHOOK_SECRET is a development placeholder")
        if not self.wizehire_api_url:
            problems.append("WIZEHIRE_API_URL is required")
        elif _is_sandbox_url(self.wizehire_api_url):
            problems.append(f"WIZEHIRE_API_URL points at a sandbox ({self.wizehire_api_url})")
        if _is_sandbox_url(self.ghl_api_url):
            problems.append(f"GHL_API_URL points at a sandbox ({self.ghl_api_url})")
        if self.ghl_redirect_uri and not self.ghl_redirect_uri.startswith("https://"):
            problems.append("GHL_REDIRECT_URI must be https")
        if self.ghl_client_id and self.token_encryption_key is None:
            problems.append("TOKEN_ENCRYPTION_KEY is required in OAuth mode (GHL_CLIENT_ID set)")
        if self.ghl_private_token and not self.ghl_location_id:
            problems.append("GHL_PRIVATE_TOKEN needs GHL_LOCATION_ID (the token's location)")
        if self.ghl_client_id and not self.ghl_client_secret:
            problems.append("GHL_CLIENT_SECRET is required with GHL_CLIENT_ID")
        return problems

    # --- derived values ------------------------------------------------------------------------
    @property
    def is_production(self) -> bool:
        return self.wizesync_env == "production"

    @property
    def wizehire_webhook_secrets(self) -> list[str]:
        """All accepted Wizehire secrets; several during a rotation, space-separated."""
        if self.wizehire_webhook_secret is None:
            return []
        return self.wizehire_webhook_secret.get_secret_value().split()

    @cached_property
    def ghl_public_key_pem(self) -> str:
        return _pem_text(self.ghl_webhook_public_key)

    @cached_property
    def ghl_rsa_public_key_pem(self) -> str | None:
        if not self.ghl_webhook_rsa_public_key:
            return None
        return _pem_text(self.ghl_webhook_rsa_public_key)

    @property
    def trusts_sandbox_ghl_key(self) -> bool:
        """Development also trusts the sandbox's GHL key, so `trigger` and the sandbox work."""
        return not self.is_production

    @property
    def handler_modules(self) -> list[str]:
        return [m.strip() for m in self.worker_handler_modules.split(",") if m.strip()]


def _pem_text(value: str) -> str:
    """The setting holds either PEM text or a path to a PEM file."""
    if "-----BEGIN" in value:
        return value
    path = Path(value).expanduser()
    try:
        return path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read PEM file {value!r}: {exc.strerror}") from exc


def _is_sandbox_url(url: str) -> bool:
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    return host in SANDBOX_HOSTS or host.endswith(".local") or "sandbox" in host


def load_settings(**overrides: object) -> Settings:
    """Build settings; a `ConfigError` (or pydantic's ValidationError) says what is wrong."""
    return Settings(**overrides)  # type: ignore[arg-type]
