"""Settings, read from the environment and `.env`, named exactly as the contract names them.

Development runs with no configuration at all: the few secrets it needs then take clearly marked
development values. `WIZESYNC_ENV=production` refuses to start with any of those, with a missing
secret, a sandbox URL or a non-https redirect URI.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
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
# Tokens at rest when TOKEN_ENCRYPTION_KEY is unset outside production (ghl/crypto.py).
DEV_TOKEN_KEY = base64.urlsafe_b64encode(
    hashlib.sha256(f"{DEV_MARKER}-token-encryption-key".encode()).digest()
).decode()
SANDBOX_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0", "[::1]", "sandbox")


CRON_OFF = "off"


def check_cron(value: str) -> str:
    """`RECONCILE_CRON`: `off`, or a cron expression croniter accepts (5 fields; a 6th for
    seconds is allowed for tests), whitespace folded; ValueError in words otherwise."""
    from croniter import croniter

    text = " ".join(value.split())
    if text.lower() == CRON_OFF:
        return CRON_OFF
    if not text or not croniter.is_valid(text):
        raise ValueError(f"not a cron expression (or `off`): {value!r}")
    return text


class ConfigError(ValueError):
    """The configuration cannot run; the message says what to change."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,  # `FOO=` in a .env or compose file means unset, not ""
    )

    # --- service -----------------------------------------------------------------------------
    wizesync_env: Literal["development", "test", "production"] = "development"
    # Kept out of repr: the URL may hold the database password.
    database_url: str = Field("sqlite+aiosqlite:///./wizesync.db", repr=False)
    admin_token: SecretStr | None = None
    log_level: str = "INFO"
    # json (default: one JSON object per line) or console (coloured, aligned, for a terminal).
    log_format: Literal["json", "console"] = "json"
    # Bearer token /metrics requires when set (Prometheus `authorization: {credentials: ...}`).
    metrics_token: SecretStr | None = None

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
    # The marketplace app's id: INSTALL/UNINSTALL webhooks naming another app are refused.
    ghl_app_id: str | None = None
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
    reconcile_window_days: int = Field(7, ge=1, le=366)
    # The service's external base URL, for links in Slack messages.
    public_url: str | None = None
    # GHL requests per rate window a reconciliation leaves to the live sync of the location.
    reconcile_ghl_reserve: int = Field(10, ge=0)

    # --- browser pages (/login, /insights, /reports/*): see docs/INSIGHTS.md -------------------
    # Signs the session cookie; unset = a key derived from ADMIN_TOKEN (rotating it logs out).
    session_secret: SecretStr | None = None
    session_max_age_seconds: int = Field(8 * 3600, ge=60, le=30 * 24 * 3600)
    # Secure (and `__Host-` prefixed) session cookie; unset = only in production.
    session_cookie_secure: bool | None = None
    # How long a location's GHL reading for the revenue figures is reused.
    insights_cache_seconds: float = Field(60.0, ge=0)
    # --- refund gateways (credentials: environment variables the mapping names) -------------
    stripe_api_base: str = "https://api.stripe.com"
    nmi_api_url: str = "https://secure.nmi.com/api/transact.php"
    authnet_api_url: str = "https://api.authorize.net/xml/v1/request.api"
    refund_gateway_timeout_seconds: float = Field(30.0, gt=0)
    # A gateway refund GHL's amountRefunded has not shown after this long: Slack is told.
    refund_ghl_catchup_seconds: int = Field(6 * 3600, ge=1)

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

    @field_validator("reconcile_cron")
    @classmethod
    def _cron_or_off(cls, value: str) -> str:
        return check_cron(value)

    # --- hardening (not in the contract; see docs/SECURITY.md) ---------------------------------
    # Production refuses SQLite (one file, no replicas, `synchronous=NORMAL`) unless this says
    # the operator knows; `/docs` and `/openapi.json` are served in production only when asked.
    allow_sqlite_in_production: bool = False
    expose_api_docs: bool = False

    @model_validator(mode="after")
    def _development_defaults_and_production_guard(self) -> Settings:
        # PEM paths are read now, so a bad one stops the start with the variable's name.
        for variable, pem in (
            ("GHL_WEBHOOK_PUBLIC_KEY", "ghl_public_key_pem"),
            ("GHL_WEBHOOK_RSA_PUBLIC_KEY", "ghl_rsa_public_key_pem"),
        ):
            try:
                getattr(self, pem)
            except ConfigError as exc:
                raise ConfigError(f"{variable}: {exc}") from None
        if self.wizesync_env == "production":
            problems = self.production_problems()
            if problems:
                raise ConfigError("refusing to start in production: " + "; ".join(problems))
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
        problems.extend(self._hardening_problems())
        return problems

    def _hardening_problems(self) -> list[str]:
        """What production also refuses: private or plain-http endpoints, SQLite, weak or
        development secrets, half-given OAuth settings (docs/SECURITY.md)."""
        from wizesync.netcheck import url_problem

        problems: list[str] = []
        slack = self.slack_webhook_url.get_secret_value() if self.slack_webhook_url else None
        for variable, url in (
            ("WIZEHIRE_API_URL", self.wizehire_api_url),
            ("WIZEHIRE_TOKEN_URL", self.wizehire_token_url),
            ("GHL_API_URL", self.ghl_api_url),
            ("GHL_AUTHORIZE_URL", self.ghl_authorize_url),
            ("SLACK_WEBHOOK_URL", slack),
            # Refund gateways move money: never a test server in production.
            ("STRIPE_API_BASE", self.stripe_api_base),
            ("NMI_API_URL", self.nmi_api_url),
            ("AUTHNET_API_URL", self.authnet_api_url),
        ):
            why = url_problem(url) if url else None
            if why and not (variable == "WIZEHIRE_API_URL" and _is_sandbox_url(url or "")):
                # (A sandbox URL has its own message above.) Slack's URL holds its secret.
                shown = "the Slack URL" if variable == "SLACK_WEBHOOK_URL" else url
                problems.append(f"{variable} {why.replace(str(url), str(shown))}")
        if self.database_url.startswith("sqlite") and not self.allow_sqlite_in_production:
            problems.append(
                "DATABASE_URL is SQLite: production runs on PostgreSQL (set "
                "ALLOW_SQLITE_IN_PRODUCTION=true to accept one file on one disk)"
            )
        token = self.admin_token.get_secret_value() if self.admin_token else ""
        if token and (len(token) < 32 or not token.isascii() or not token.isprintable()):
            problems.append("ADMIN_TOKEN must be at least 32 printable ASCII characters")
        for secret in self.wizehire_webhook_secrets:
            if _whsec_key_bytes(secret) < 24:
                problems.append(
                    "WIZEHIRE_WEBHOOK_SECRET: each secret needs a key of at least "
                    "24 bytes (the base64 after the prefix: 24+ random bytes)"
                )
                break
        from wizesync.devmode import is_sandbox_key

        if is_sandbox_key(self.ghl_public_key_pem):
            problems.append(
                "GHL_WEBHOOK_PUBLIC_KEY is the sandbox's key (its private half is "
                "public): use GHL's published key"
            )
        problems.extend(_token_key_problems(self.token_encryption_key))
        oauth = {
            "GHL_CLIENT_ID": self.ghl_client_id,
            "GHL_CLIENT_SECRET": self.ghl_client_secret,
            "GHL_REDIRECT_URI": self.ghl_redirect_uri,
            "GHL_APP_ID": self.ghl_app_id,
        }
        if any(oauth.values()) and not all(oauth.values()):
            missing = ", ".join(name for name, value in oauth.items() if not value)
            problems.append(f"GHL OAuth settings are half given: {missing} missing")
        wizehire = {
            "WIZEHIRE_TOKEN_URL": self.wizehire_token_url,
            "WIZEHIRE_CLIENT_ID": self.wizehire_client_id,
            "WIZEHIRE_CLIENT_SECRET": self.wizehire_client_secret,
        }
        if any(wizehire.values()) and not all(wizehire.values()):
            missing = ", ".join(name for name, value in wizehire.items() if not value)
            problems.append(f"Wizehire OAuth settings are half given: {missing} missing")
        return problems

    @property
    def api_docs_enabled(self) -> bool:
        """`/docs` and `/openapi.json`: always outside production, on request in it."""
        return not self.is_production or self.expose_api_docs

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
    def handler_modules(self) -> list[str]:
        return [m.strip() for m in self.worker_handler_modules.split(",") if m.strip()]


def _whsec_key_bytes(secret: str) -> int:
    """How many key bytes a `whsec_<base64>` secret holds (0 when it does not decode)."""
    try:
        return len(base64.b64decode(secret.removeprefix("whsec_"), validate=True))
    except ValueError:
        return 0


def _token_key_problems(value: SecretStr | None) -> list[str]:
    """TOKEN_ENCRYPTION_KEY: every comma-separated key a Fernet key, none the development one."""
    if value is None:
        return []
    problems = []
    for position, key in enumerate([k.strip() for k in value.get_secret_value().split(",")], 1):
        try:
            raw = base64.urlsafe_b64decode(key.encode("ascii"))
        except ValueError:
            raw = b""
        if len(raw) != 32:
            problems.append(
                f"TOKEN_ENCRYPTION_KEY: key #{position} is not a Fernet key "
                "(32 url-safe base64 bytes)"
            )
        elif key == DEV_TOKEN_KEY:
            problems.append(f"TOKEN_ENCRYPTION_KEY: key #{position} is the development key")
    return problems


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
