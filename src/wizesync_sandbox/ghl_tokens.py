"""The fake GHL's OAuth server: authorization codes, access tokens, ROTATING single-use refresh
tokens, agency -> location tokens.

Error bodies follow the node `oauth2-server` library GHL runs (`error`, `error_description`, e.g.
"Invalid grant: refresh token is invalid"), with GHL's usual `statusCode` and `message` added so
either parser finds them. A paused location answers 400 "Location is not active" and leaves the
refresh token alive, as GHL does.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

from wizesync_sandbox.clock import Clock, iso
from wizesync_sandbox.ghl_state import GhlStore, alnum_id
from wizesync_sandbox.settings import SandboxConfig

UserType = Literal["Location", "Company"]

ALL_SCOPES = (
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
    "products/prices.readonly",
    "oauth.readonly",
    "oauth.write",
)


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.body = {
            "statusCode": status,
            "error": error,
            "error_description": description,
            "message": description,
        }


@dataclass
class Grant:
    """What a token stands for: one location, or an agency (company) and its approved locations."""

    user_type: UserType
    company_id: str
    location_id: str | None
    approved_locations: list[str]
    scopes: list[str]
    client_id: str | None
    user_id: str = field(default_factory=alnum_id)

    def covers(self, location_id: str) -> bool:
        if self.user_type == "Location":
            return self.location_id == location_id
        return location_id in self.approved_locations


@dataclass
class Token:
    value: str
    grant: Grant
    expires_at: float
    kind: Literal["access", "refresh", "code"]
    redirect_uri: str | None = None
    used_at: float | None = None

    def public(self) -> dict[str, Any]:
        g = self.grant
        return {
            "token": self.value,
            "kind": self.kind,
            "userType": g.user_type,
            "locationId": g.location_id,
            "companyId": g.company_id,
            "approvedLocations": g.approved_locations,
            "scopes": g.scopes,
            "expiresAt": _iso(self.expires_at),
            "usedAt": _iso(self.used_at),
        }


def _iso(epoch: float | None) -> str | None:
    from datetime import UTC, datetime

    return None if epoch is None else iso(datetime.fromtimestamp(epoch, UTC))


def _new(prefix: str) -> str:
    return f"{prefix}{secrets.token_urlsafe(24)}"


class TokenAuthority:
    def __init__(self, config: SandboxConfig, clock: Clock, store: GhlStore) -> None:
        self._config = config
        self._clock = clock
        self._store = store
        self.codes: dict[str, Token] = {}
        self.access: dict[str, Token] = {}
        self.refresh: dict[str, Token] = {}
        # Every call to the token endpoints: what E2's single-flight tests count.
        self.calls: list[dict[str, Any]] = []

    def reset(self) -> None:
        self.codes.clear()
        self.access.clear()
        self.refresh.clear()
        self.calls.clear()

    # --- codes ---------------------------------------------------------------------------------
    def issue_code(self, grant: Grant, redirect_uri: str | None = None) -> str:
        code = _new("sbx_code_")
        expires = self._clock.time() + self._config.auth_code_ttl_seconds
        self.codes[code] = Token(code, grant, expires, "code", redirect_uri=redirect_uri)
        return code

    def grant_for(
        self,
        *,
        location_id: str | None = None,
        company_id: str | None = None,
        user_type: UserType | None = None,
        approved_locations: list[str] | None = None,
        scopes: list[str] | None = None,
        client_id: str | None = None,
    ) -> Grant:
        """A grant for an install: one location, or an agency with its approved locations."""
        if location_id and user_type != "Company":
            location = self._store.locations[location_id]
            return Grant(
                "Location",
                location["companyId"],
                location_id,
                [location_id],
                list(scopes or ALL_SCOPES),
                client_id,
            )
        if company_id is None and location_id:
            company_id = self._store.locations[location_id]["companyId"]
        if company_id is None:
            raise ValueError("a company install needs company_id (or a location of it)")
        approved = approved_locations or [
            loc["id"] for loc in self._store.locations.values() if loc["companyId"] == company_id
        ]
        return Grant("Company", company_id, None, approved, list(scopes or ALL_SCOPES), client_id)

    # --- POST /oauth/token ---------------------------------------------------------------------
    def token_endpoint(self, form: dict[str, str]) -> dict[str, Any]:
        grant_type = form.get("grant_type", "")
        record: dict[str, Any] = {"grant_type": grant_type, "at": iso(self._clock.now())}
        self.calls.append(record)
        try:
            self._check_client(form)
            if grant_type == "authorization_code":
                answer = self._exchange_code(form)
            elif grant_type == "refresh_token":
                answer = self._refresh(form)
            elif not grant_type:
                raise OAuthError(
                    400, "invalid_request", "Invalid request: missing parameter: `grant_type`"
                )
            else:
                raise OAuthError(
                    400, "unsupported_grant_type", "Unsupported grant type: `grant_type` is invalid"
                )
        except OAuthError as exc:
            record.update(outcome=exc.body["error"], status=exc.status)
            raise
        record.update(
            outcome="ok",
            status=200,
            locationId=answer.get("locationId"),
            companyId=answer.get("companyId"),
        )
        return answer

    def _check_client(self, form: dict[str, str]) -> None:
        if not form.get("client_id") or not form.get("client_secret"):
            raise OAuthError(
                400, "invalid_client", "Invalid client: cannot retrieve client credentials"
            )
        wanted_id, wanted_secret = self._config.ghl_client_id, self._config.ghl_client_secret
        if wanted_id and (form["client_id"] != wanted_id or form["client_secret"] != wanted_secret):
            raise OAuthError(401, "invalid_client", "Invalid client: client is invalid")

    def _exchange_code(self, form: dict[str, str]) -> dict[str, Any]:
        code = form.get("code")
        if not code:
            raise OAuthError(400, "invalid_request", "Invalid request: missing parameter: `code`")
        token = self.codes.get(code)
        if token is None or token.used_at is not None:
            raise OAuthError(400, "invalid_grant", "Invalid grant: authorization code is invalid")
        if token.expires_at <= self._clock.time():
            raise OAuthError(400, "invalid_grant", "Invalid grant: authorization code has expired")
        if token.redirect_uri and form.get("redirect_uri") not in (None, "", token.redirect_uri):
            raise OAuthError(400, "invalid_request", "Invalid request: `redirect_uri` is invalid")
        wanted = form.get("user_type")
        if wanted and wanted != token.grant.user_type:
            raise OAuthError(
                400,
                "invalid_request",
                f"Invalid request: this install was made for user_type {token.grant.user_type}",
            )
        token.used_at = self._clock.time()
        return self._issue_pair(token.grant)

    def _refresh(self, form: dict[str, str]) -> dict[str, Any]:
        value = form.get("refresh_token")
        if not value:
            raise OAuthError(
                400, "invalid_request", "Invalid request: missing parameter: `refresh_token`"
            )
        token = self.refresh.get(value)
        status = self._config.invalid_grant_status
        if token is None or token.used_at is not None:
            raise OAuthError(status, "invalid_grant", "Invalid grant: refresh token is invalid")
        if token.expires_at <= self._clock.time():
            raise OAuthError(status, "invalid_grant", "Invalid grant: refresh token has expired")
        location_id = token.grant.location_id
        if location_id and not self._store.locations.get(location_id, {}).get("active", True):
            # Paused sub-account: the same refresh token works again once it is active.
            raise LocationInactive()
        token.used_at = self._clock.time()
        return self._issue_pair(token.grant)

    def _issue_pair(self, grant: Grant) -> dict[str, Any]:
        now = self._clock.time()
        access = Token(
            _new("sbx_at_"), grant, now + self._config.access_token_ttl_seconds, "access"
        )
        refresh = Token(
            _new("sbx_rt_"), grant, now + self._config.refresh_token_ttl_seconds, "refresh"
        )
        self.access[access.value] = access
        self.refresh[refresh.value] = refresh
        answer: dict[str, Any] = {
            "access_token": access.value,
            "token_type": "Bearer",
            "expires_in": self._config.access_token_ttl_seconds,
            "refresh_token": refresh.value,
            "scope": " ".join(grant.scopes),
            "userType": grant.user_type,
            "companyId": grant.company_id,
            "userId": grant.user_id,
            "isBulkInstallation": grant.user_type == "Company",
        }
        if grant.location_id:
            answer["locationId"] = grant.location_id
        if grant.user_type == "Company":
            answer["approvedLocations"] = list(grant.approved_locations)
        return answer

    # --- POST /oauth/locationToken -------------------------------------------------------------
    def location_token(self, agency: Token, form: dict[str, str]) -> dict[str, Any]:
        company_id, location_id = form.get("companyId"), form.get("locationId")
        self.calls.append(
            {
                "grant_type": "location_token",
                "at": iso(self._clock.now()),
                "locationId": location_id,
                "companyId": company_id,
            }
        )
        if not company_id or not location_id:
            raise OAuthError(
                422, "Unprocessable Entity", "companyId and locationId should not be empty"
            )
        grant = agency.grant
        if company_id != grant.company_id or not grant.covers(location_id):
            raise OAuthError(400, "Bad Request", "Location not found or not approved for this app")
        if not self._store.locations.get(location_id, {}).get("active", True):
            raise LocationInactive()
        location_grant = Grant(
            "Location",
            company_id,
            location_id,
            [location_id],
            list(grant.scopes),
            grant.client_id,
            grant.user_id,
        )
        access = Token(
            _new("sbx_at_"),
            location_grant,
            self._clock.time() + self._config.access_token_ttl_seconds,
            "access",
        )
        self.access[access.value] = access
        return {
            "access_token": access.value,
            "token_type": "Bearer",
            "expires_in": self._config.access_token_ttl_seconds,
            "scope": " ".join(location_grant.scopes),
            "locationId": location_id,
            "userId": grant.user_id,
        }

    # --- checks and admin ----------------------------------------------------------------------
    def valid_access(self, value: str) -> Token | None:
        token = self.access.get(value)
        if token is None or token.expires_at <= self._clock.time():
            return None
        return token

    def expire_access(self, location_id: str | None = None) -> int:
        now, count = self._clock.time(), 0
        for token in self.access.values():
            if location_id is None or token.grant.covers(location_id):
                token.expires_at = min(token.expires_at, now - 1)
                count += 1
        return count

    def revoke_location(self, location_id: str) -> None:
        """Uninstall: every token of that location dies."""
        for table in (self.access, self.refresh):
            for value in [v for v, t in table.items() if t.grant.location_id == location_id]:
                del table[value]

    def dump(self) -> dict[str, Any]:
        return {
            "codes": [t.public() for t in self.codes.values()],
            "access_tokens": [t.public() for t in self.access.values()],
            "refresh_tokens": [t.public() for t in self.refresh.values()],
            "calls": list(self.calls),
        }


class LocationInactive(OAuthError):
    def __init__(self) -> None:
        super().__init__(400, "Bad Request", "Location is not active")
