"""The fake GHL's HTTP gate: rate limit, `Version` header, bearer token, location and scope, in
that order, with GHL's error bodies and the `X-RateLimit-*` headers on every answer.

Who may call for a location:
- a sandbox OAuth access token (`/oauth/token`, `/oauth/locationToken`) that is not expired:
  a Location token for its own location; a Company (agency) token for its approved locations, on
  the routes GHL opens to agency tokens (invoices, products); and only with the route's scope;
- PIT mode: ANY other bearer token, for a location seeded with `pit: true`, when the request names
  that location (`altId`/`locationId`); if the location has a `privateToken`, only that token.
The rate-limit bucket is the location (the token's, else the one the request names).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wizesync_sandbox.ghl_state import Doc, GhlStore
from wizesync_sandbox.ghl_tokens import Grant, TokenAuthority
from wizesync_sandbox.ratelimit import RateLimiter
from wizesync_sandbox.settings import GHL_VERSIONS, SandboxConfig

INVALID_TOKEN = "Invalid token: access token is invalid"  # noqa: S105 (an error message)
NO_SCOPE = "The token is not authorized for this scope."
NO_LOCATION = "The token does not have access to this location."
WRONG_CLASS = (
    "This authClass type is not allowed to access this scope. Please reach out to the "
    "Platform team to get it added."
)


class GhlHttpError(Exception):
    def __init__(
        self,
        status: int,
        message: str | list[str],
        *,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(str(message))
        self.status = status
        self.headers = headers or {}
        self.body = body or {
            "statusCode": status,
            "message": message,
            "error": HTTPStatus(status).phrase,
        }


def not_found(what: str, object_id: str, *, payments_style: bool = False) -> GhlHttpError:
    """GHL's 404s come in two shapes; the payments service answers the `{status, name, traceId}`
    one, the others the usual `{statusCode, message, error}` one."""
    message = f"{what} with id {object_id} not found"
    if payments_style:
        return GhlHttpError(
            404,
            message,
            body={
                "status": 404,
                "message": message,
                "name": "NotFoundException",
                "traceId": secrets.token_hex(16),
            },
        )
    return GhlHttpError(404, message)


@dataclass
class Caller:
    location_id: str
    grant: Grant | None  # None: PIT mode
    body: Any
    request: Request

    def query(self, name: str, default: str | None = None) -> str | None:
        return self.request.query_params.get(name, default)

    def require_query(self, *names: str) -> None:
        errors = [f"{n} should not be empty" for n in names if not self.request.query_params.get(n)]
        if errors:
            raise GhlHttpError(422, errors)

    def require_body_object(self) -> dict[str, Any]:
        if not isinstance(self.body, dict):
            raise GhlHttpError(400, "Request body must be a JSON object")
        return self.body


class Gate:
    def __init__(
        self, config: SandboxConfig, store: GhlStore, tokens: TokenAuthority, limiter: RateLimiter
    ) -> None:
        self.config = config
        self.store = store
        self.tokens = tokens
        self.limiter = limiter

    async def __call__(
        self, request: Request, scope: str, *, agency: bool = False, owner: str | None = None
    ) -> Caller:
        """`owner`: the location of the object a path names, for routes whose request carries no
        location (`GET /contacts/{id}`), so PIT mode can tell which location is meant."""
        bearer = _bearer(request)
        body = await _json_body(request)
        named = _named_location(request, body) or owner
        token = self.tokens.access.get(bearer) if bearer else None
        key = (token.grant.location_id if token and token.grant.location_id else named) or "-"
        self.rate_limit(request, key)
        self.check_version(request)
        location_id, grant = self._authorise(bearer, token, named, scope, agency)
        location = self.store.locations.get(location_id)
        if location is not None and not location["active"]:
            raise GhlHttpError(400, "Location is not active")
        return Caller(location_id, grant, body, request)

    def rate_limit(self, request: Request, key: str) -> None:
        decision = self.limiter.hit(key)
        request.scope.setdefault("state", {})["ratelimit_headers"] = decision.headers
        if not decision.allowed:
            headers = dict(decision.headers)
            if self.config.ghl_retry_after:
                headers["Retry-After"] = str(max(1, round(decision.retry_after + 0.5)))
            raise GhlHttpError(429, "Too many requests", headers=headers)

    def check_version(self, request: Request) -> None:
        version = request.headers.get("version")
        if not version:
            raise GhlHttpError(400, "Version header was not found")
        if version not in GHL_VERSIONS:
            raise GhlHttpError(400, f"Version {version} is not supported")

    def _authorise(
        self, bearer: str | None, token: Any, named: str | None, scope: str, agency: bool
    ) -> tuple[str, Grant | None]:
        if not bearer:
            raise GhlHttpError(401, INVALID_TOKEN)
        if token is not None:
            if self.tokens.valid_access(bearer) is None:
                raise GhlHttpError(401, INVALID_TOKEN)
            grant: Grant = token.grant
            if grant.user_type == "Company" and not agency:
                raise GhlHttpError(401, WRONG_CLASS)
            location_id = named or grant.location_id
            if not location_id:
                raise GhlHttpError(422, ["altId should not be empty"])
            if not grant.covers(location_id):
                raise GhlHttpError(403, NO_LOCATION)
            if scope not in grant.scopes:
                raise GhlHttpError(401, NO_SCOPE)
            return location_id, grant
        location = self.store.locations.get(named or "")
        if location is None or not location["pit"]:
            raise GhlHttpError(401, INVALID_TOKEN)
        if location.get("privateToken") and location["privateToken"] != bearer:
            raise GhlHttpError(401, INVALID_TOKEN)
        return location["id"], None

    def agency_token(self, request: Request) -> Any:
        """`/oauth/locationToken`: a valid Company token, or 401."""
        bearer = _bearer(request)
        token = self.tokens.valid_access(bearer) if bearer else None
        if token is None:
            raise GhlHttpError(401, INVALID_TOKEN)
        if token.grant.user_type != "Company":
            raise GhlHttpError(401, WRONG_CLASS)
        return token


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def _json_body(request: Request) -> Any:
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    raw = await request.body()
    if not raw:
        return None
    content_type = request.headers.get("content-type", "")
    if "json" not in content_type:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise GhlHttpError(400, f"Unexpected token in JSON: {exc}") from exc


def _named_location(request: Request, body: Any) -> str | None:
    for source in (request.query_params, body if isinstance(body, dict) else {}):
        for name in ("altId", "locationId"):
            value = source.get(name)
            if isinstance(value, str) and value:
                return value
    return None


def view_location(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if k != "privateToken"}


class RateLimitHeaders:
    """Adds the X-RateLimit-* headers to every answer of the fake GHL (errors and 404s too)."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state") or {}
                headers = state.get("ratelimit_headers") or self.limiter.peek("-")
                existing = {k.lower() for k, _ in message.get("headers", [])}
                extra = [
                    (k.lower().encode(), v.encode())
                    for k, v in headers.items()
                    if k.lower().encode() not in existing
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
