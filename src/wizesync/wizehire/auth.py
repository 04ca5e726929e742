"""How the service proves itself to Wizehire: a bearer API key, or OAuth2 client credentials.

Client credentials use authlib's OAuth2 pieces (client authentication at the token endpoint and
token expiry) over the service's shared httpx client. authlib's own httpx client is not used: it
would open a second connection pool with its own timeouts, and authlib 1.9 warns at import that
plain httpx support there is deprecated. The token is fetched on first use, kept until it is
about to expire (`leeway`), and dropped when Wizehire answers 401 so the next call fetches a new
one. Secrets stay in `SecretStr` and out of every repr and log line.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749 import OAuth2Token
from pydantic import SecretStr

from wizesync.config import ConfigError, Settings
from wizesync.wizehire.errors import (
    WizehireAuthError,
    WizehireBadResponse,
    error_from_response,
)
from wizesync.wizehire.exchange import WIZEHIRE_TIMEOUT, send

log = logging.getLogger("wizesync.wizehire")


class WizehireAuth(Protocol):
    mode: str

    async def token(self, http: httpx.AsyncClient) -> str:
        """The bearer token to send now."""
        ...

    async def rejected(self, token: str) -> bool:
        """Wizehire refused `token` (401). True when asking again for a token may help."""
        ...


class ApiKeyAuth:
    """`WIZEHIRE_API_KEY`: a fixed bearer key; a 401 cannot be cured by asking again."""

    mode = "api_key"

    def __init__(self, key: SecretStr | str) -> None:
        self._key = key if isinstance(key, SecretStr) else SecretStr(key)
        if not self._key.get_secret_value().strip():
            raise ValueError("the Wizehire API key is empty")

    async def token(self, http: httpx.AsyncClient) -> str:
        return self._key.get_secret_value()

    async def rejected(self, token: str) -> bool:
        return False

    def __repr__(self) -> str:
        return "ApiKeyAuth(key=**********)"


class ClientCredentialsAuth:
    """`WIZEHIRE_TOKEN_URL` + `WIZEHIRE_CLIENT_ID` + `WIZEHIRE_CLIENT_SECRET` (RFC 6749 4.4)."""

    mode = "client_credentials"

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: SecretStr | str,
        scope: str | None = None,
        auth_method: str = "client_secret_basic",
        leeway: float = 60.0,
        timeout: httpx.Timeout = WIZEHIRE_TIMEOUT,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._secret = (
            client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)
        )
        self._scope = scope
        self._auth_method = auth_method
        self._leeway = leeway
        self._timeout = timeout
        self._token: OAuth2Token | None = None
        # One fetch at a time: concurrent calls with no token wait for the same fetch.
        self._lock = asyncio.Lock()

    async def token(self, http: httpx.AsyncClient) -> str:
        async with self._lock:
            if self._token is None or self._token.is_expired(leeway=self._leeway):
                self._token = await self._fetch(http)
            return str(self._token["access_token"])

    async def rejected(self, token: str) -> bool:
        async with self._lock:
            # Only drop it if nobody replaced it meanwhile.
            if self._token is not None and self._token.get("access_token") == token:
                self._token = None
        return True

    async def _fetch(self, http: httpx.AsyncClient) -> OAuth2Token:
        form: dict[str, str] = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        client_auth = ClientAuth(self.client_id, self._secret.get_secret_value(), self._auth_method)
        url, headers, body = client_auth.prepare("POST", self.token_url, headers, urlencode(form))
        response = await send(
            http, "POST", url, content=body.encode(), headers=headers, http_timeout=self._timeout
        )
        if not response.is_success:
            error = error_from_response(response)
            if response.status_code in (400, 401, 403):
                # RFC 6749 5.2: invalid_client, unauthorized_client, invalid_scope, ...
                raise WizehireAuthError(
                    f"the Wizehire token endpoint refused the client credentials: {error.detail}",
                    status=error.status,
                    code=error.code,
                )
            raise error
        token = _parse_token(response)
        log.info(
            "wizehire access token fetched",
            extra={"expires_in": token.get("expires_in"), "client_id": self.client_id},
        )
        return token

    def __repr__(self) -> str:
        return (
            f"ClientCredentialsAuth(token_url={self.token_url!r}, "
            f"client_id={self.client_id!r}, client_secret=**********)"
        )


def _parse_token(response: httpx.Response) -> OAuth2Token:
    try:
        data: Any = response.json()
    except ValueError:
        data = None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("access_token"), str)
        or not data["access_token"]
    ):
        raise WizehireBadResponse(
            "the Wizehire token endpoint answered without an access_token",
            status=response.status_code,
        )
    token_type = str(data.get("token_type") or "bearer")
    if token_type.lower() != "bearer":
        raise WizehireBadResponse(
            f"the Wizehire token endpoint gave a {token_type!r} token; "
            "only bearer tokens are supported",
            status=response.status_code,
        )
    try:
        return OAuth2Token.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise WizehireBadResponse(
            "the Wizehire token endpoint answered an unreadable expiry", status=response.status_code
        ) from exc


def build_wizehire_auth(settings: Settings) -> WizehireAuth:
    """The auth mode the settings describe; a `ConfigError` in words when they describe none."""
    key = settings.wizehire_api_key
    has_key = key is not None and bool(key.get_secret_value().strip())
    cc = {
        "WIZEHIRE_TOKEN_URL": settings.wizehire_token_url,
        "WIZEHIRE_CLIENT_ID": settings.wizehire_client_id,
        "WIZEHIRE_CLIENT_SECRET": (
            settings.wizehire_client_secret.get_secret_value()
            if settings.wizehire_client_secret
            else None
        ),
    }
    given = [name for name, value in cc.items() if value]
    if has_key and given:
        raise ConfigError(
            "Wizehire API credentials are ambiguous: WIZEHIRE_API_KEY is set and so is "
            f"{', '.join(given)}; set either the API key or the client credentials, not both"
        )
    if has_key:
        assert key is not None
        return ApiKeyAuth(key)
    if len(given) == len(cc):
        assert settings.wizehire_token_url and settings.wizehire_client_id
        assert settings.wizehire_client_secret is not None
        return ClientCredentialsAuth(
            token_url=settings.wizehire_token_url,
            client_id=settings.wizehire_client_id,
            client_secret=settings.wizehire_client_secret,
        )
    if given:
        missing = [name for name in cc if name not in given]
        raise ConfigError(
            "Wizehire OAuth2 client credentials are incomplete: "
            f"{', '.join(given)} set but {', '.join(missing)} missing"
        )
    raise ConfigError(
        "no Wizehire API credentials are configured: set WIZEHIRE_API_KEY (a bearer key), or "
        "WIZEHIRE_TOKEN_URL, WIZEHIRE_CLIENT_ID and WIZEHIRE_CLIENT_SECRET (OAuth2 client "
        "credentials)"
    )
