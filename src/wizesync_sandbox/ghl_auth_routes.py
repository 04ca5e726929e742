"""The fake GHL's OAuth endpoints: the authorize page, `/oauth/token`, `/oauth/locationToken`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse

from wizesync.devmode import SANDBOX_APP_ID
from wizesync_sandbox.ghl_http import GhlHttpError
from wizesync_sandbox.ghl_tokens import ALL_SCOPES, OAuthError, UserType

if TYPE_CHECKING:
    from wizesync_sandbox.core import Sandbox


def router(sb: Sandbox) -> APIRouter:
    api = APIRouter()

    @api.get("/oauth/chooselocation")
    async def choose_location(request: Request) -> RedirectResponse:
        """The marketplace's install page, without the clicking: it installs the app on a location
        (`location_id`, default the first seeded one) or, with `user_type=Company`, on that
        location's agency, and redirects to `redirect_uri` with a one-time `code` and the `state`.
        Point `GHL_AUTHORIZE_URL` here."""
        q = request.query_params
        redirect_uri = q.get("redirect_uri")
        if not redirect_uri or q.get("response_type", "code") != "code":
            raise GhlHttpError(400, "redirect_uri and response_type=code are required")
        location_id = q.get("location_id") or next(iter(sb.store.locations), None)
        if location_id not in sb.store.locations:
            raise GhlHttpError(400, "no such location in the sandbox; seed one first")
        scopes = [s for s in (q.get("scope") or "").split() if s] or list(ALL_SCOPES)
        user_type: UserType = "Company" if q.get("user_type") == "Company" else "Location"
        grant = sb.tokens.grant_for(
            location_id=location_id,
            user_type=user_type,
            scopes=scopes,
            client_id=q.get("client_id"),
        )
        code = sb.tokens.issue_code(grant, redirect_uri)
        install = {
            "appId": q.get("client_id") or SANDBOX_APP_ID,
            "companyId": sb.store.locations[location_id]["companyId"],
            "userId": grant.user_id,
            "companyName": "Sandbox Agency",
        }
        if user_type == "Location":
            install["locationId"] = location_id
        sb.outbox.ghl("INSTALL", install)
        params = {"code": code, **({"state": q["state"]} if q.get("state") else {})}
        sep = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{sep}{urlencode(params)}", status_code=302)

    @api.post("/oauth/token")
    async def token(request: Request) -> JSONResponse:
        """Exchange a code or a refresh token. Refresh tokens rotate: each works once."""
        sb.gate.rate_limit(request, "oauth")
        form = await _form(request)
        try:
            return JSONResponse(sb.tokens.token_endpoint(form))
        except OAuthError as exc:
            return JSONResponse(exc.body, status_code=exc.status)

    @api.post("/oauth/locationToken")
    async def location_token(request: Request) -> JSONResponse:
        """An agency (Company) token mints a Location token for one of its approved locations."""
        sb.gate.rate_limit(request, "oauth")
        sb.gate.check_version(request)
        agency = sb.gate.agency_token(request)
        form = await _form(request)
        try:
            return JSONResponse(sb.tokens.location_token(agency, form))
        except OAuthError as exc:
            return JSONResponse(exc.body, status_code=exc.status)

    return api


async def _form(request: Request) -> dict[str, str]:
    """GHL's token endpoints take form bodies (JSON is tolerated)."""
    raw = await request.body()
    if "json" in request.headers.get("content-type", ""):
        try:
            data = json.loads(raw or b"{}")
        except ValueError as exc:
            raise GhlHttpError(400, "body is not valid JSON") from exc
        return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
