"""GHL's OAuth endpoints: the authorize URL, code and refresh grants, agency location tokens.

Only this module talks to `/oauth/*`; `wizesync.ghl.tokens` decides WHEN (under a database lock),
this module only makes the call and turns GHL's answers into typed errors. Tokens travel as
`SecretStr` so that no repr, log line or traceback shows one.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from wizesync.config import ConfigError, Settings
from wizesync.db.ghl_models import UserType
from wizesync.ghl.errors import (
    DEFAULT_RATE_LIMIT_DELAY,
    GhlError,
    GhlLocationInactive,
    GhlNeedsReauth,
    GhlRateLimited,
    GhlServerError,
    GhlTimeout,
    retry_after_seconds,
)
from wizesync.outbound import record_outbound_call

log = logging.getLogger(__name__)

# The scopes wizesync asks for (GHL-FACTS.md): payments, invoices, contacts, products.
SCOPES = (
    "payments/orders.readonly",
    "payments/orders.write",
    "payments/orders.collectPayment",
    "payments/transactions.readonly",
    "payments/subscriptions.readonly",
    "payments/integration.readonly",
    "payments/integration.write",
    "invoices.readonly",
    "invoices.write",
    "contacts.readonly",
    "contacts.write",
    "products.readonly",
    "products/prices.readonly",  # the official spec's scope on the price endpoints
)


class TokenGrant(BaseModel):
    """What `/oauth/token` and `/oauth/locationToken` answer (unknown fields ignored)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    access_token: SecretStr
    refresh_token: SecretStr | None = None
    expires_in: float = 86399
    scope: str | None = None
    user_type: str | None = Field(None, alias="userType")
    location_id: str | None = Field(None, alias="locationId")
    company_id: str | None = Field(None, alias="companyId")
    user_id: str | None = Field(None, alias="userId")
    approved_locations: list[str] = Field(default_factory=list, alias="approvedLocations")

    @field_validator("approved_locations", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class GhlOAuth:
    """Calls GHL's OAuth endpoints on the shared HTTP client."""

    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self._http = http
        self._settings = settings
        self._base = settings.ghl_api_url.rstrip("/")

    @property
    def configured(self) -> bool:
        s = self._settings
        return bool(s.ghl_client_id and s.ghl_client_secret and s.ghl_redirect_uri)

    def _require_config(self) -> tuple[str, str, str]:
        s = self._settings
        if not (s.ghl_client_id and s.ghl_client_secret and s.ghl_redirect_uri):
            raise ConfigError(
                "OAuth mode needs GHL_CLIENT_ID, GHL_CLIENT_SECRET and GHL_REDIRECT_URI"
            )
        return s.ghl_client_id, s.ghl_client_secret.get_secret_value(), s.ghl_redirect_uri

    def authorize_url(self, state: str) -> str:
        self._require_config()
        return authorize_url(self._settings, state)

    async def exchange_code(self, code: str, user_type: str = UserType.LOCATION) -> TokenGrant:
        """The authorization_code grant of the install callback."""
        return await self._token({"grant_type": "authorization_code", "code": code}, user_type)

    async def refresh(self, refresh_token: str, user_type: str) -> TokenGrant:
        """The refresh_token grant. GHL rotates: the given refresh token is dead afterwards."""
        return await self._token(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}, user_type
        )

    async def location_token(
        self, company_access_token: str, company_id: str, location_id: str
    ) -> TokenGrant:
        """An agency (Company) token buys a location token (no refresh token comes with it)."""
        return await self._post(
            "/oauth/locationToken",
            {"companyId": company_id, "locationId": location_id},
            headers={
                "Authorization": f"Bearer {company_access_token}",
                "Version": self._settings.ghl_api_version,
            },
            what="location token",
        )

    async def _token(self, form: dict[str, str], user_type: str) -> TokenGrant:
        client_id, client_secret, redirect_uri = self._require_config()
        return await self._post(
            "/oauth/token",
            {
                **form,
                "client_id": client_id,
                "client_secret": client_secret,
                "user_type": user_type,
                "redirect_uri": redirect_uri,
            },
            headers={},
            what=form["grant_type"],
        )

    async def _post(
        self, path: str, form: dict[str, str], *, headers: dict[str, str], what: str
    ) -> TokenGrant:
        url = self._base + path
        started = time.monotonic()
        status: int | None = None
        try:
            response = await self._http.post(
                url, data=form, headers={"Accept": "application/json", **headers}
            )
            status = response.status_code
        except httpx.TimeoutException:
            raise GhlTimeout(f"GHL {path} timed out ({what})") from None
        except httpx.TransportError as exc:
            raise GhlServerError(f"GHL {path} unreachable ({what}): {type(exc).__name__}") from None
        finally:
            ms = (time.monotonic() - started) * 1000
            record_outbound_call("POST", url, status, ms)
            # Never the form or the body: both carry secrets.
            log.debug(
                "GHL OAuth call",
                extra={"path": path, "grant": what, "status": status, "ms": round(ms, 1)},
            )
        if response.status_code >= 400:
            raise token_error(response, what)
        try:
            return TokenGrant.model_validate(response.json())
        except (ValueError, ValidationError):
            raise GhlServerError(
                f"GHL {path} answered {response.status_code} without a token ({what})",
                status=response.status_code,
            ) from None


def authorize_url(settings: Settings, state: str) -> str:
    """Where the operator's browser goes to choose a location and approve the scopes."""
    if not (settings.ghl_client_id and settings.ghl_redirect_uri):
        raise ConfigError("the install link needs GHL_CLIENT_ID and GHL_REDIRECT_URI")
    query = urlencode(
        {
            "response_type": "code",
            "redirect_uri": settings.ghl_redirect_uri,
            "client_id": settings.ghl_client_id,
            "scope": " ".join(SCOPES),
            "state": state,
        },
        quote_via=quote,  # spaces as %20: GHL reads `scope` space-separated
    )
    base = settings.ghl_authorize_url
    return f"{base}{'&' if '?' in base else '?'}{query}"


def token_error(response: httpx.Response, what: str) -> GhlError:
    """GHL's OAuth error answers, typed by what the caller must do about them."""
    status = response.status_code
    texts: list[str] = []
    trace_id = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("error", "error_description", "message"):
            value = body.get(key)
            if isinstance(value, str):
                texts.append(value)
            elif isinstance(value, list):
                texts.extend(str(v) for v in value)
        trace = body.get("traceId")
        trace_id = trace if isinstance(trace, str) else None
    message = "; ".join(texts)[:500] or f"HTTP {status}"
    lowered = message.lower()
    detail = f"GHL refused the {what} call: {message}"
    kw: dict[str, Any] = {"status": status, "messages": texts or [message], "trace_id": trace_id}
    if "location is not active" in lowered:
        # Checked first: a paused sub-account recovers, and the same refresh token works later.
        return GhlLocationInactive(detail, **kw)
    if any(
        sign in lowered for sign in ("invalid_grant", "invalid grant", "refresh token is invalid")
    ):
        return GhlNeedsReauth(detail, **kw)
    if status == 429:
        delay = retry_after_seconds(response.headers)
        return GhlRateLimited(
            detail, delay=DEFAULT_RATE_LIMIT_DELAY if delay is None else delay, **kw
        )
    if status >= 500:
        return GhlServerError(detail, **kw)
    return GhlError(detail, **kw)
