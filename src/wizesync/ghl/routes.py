"""`/oauth/ghl/*`: installing the marketplace app (the browser's side of OAuth)."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import RedirectResponse

from wizesync.config import ConfigError
from wizesync.ghl import installs
from wizesync.ghl.crypto import TokenCipher
from wizesync.ghl.errors import GhlError, GhlServerError, GhlTimeout
from wizesync.ghl.oauth import GhlOAuth
from wizesync.problems import Problem
from wizesync.state import AppState, get_state

log = logging.getLogger(__name__)
router = APIRouter(prefix="/oauth/ghl", tags=["ghl"])
StateDep = Annotated[AppState, Depends(get_state)]


def _oauth(state: AppState) -> GhlOAuth:
    if state.ghl_http is None:  # pragma: no cover - the lifespan always builds it
        raise RuntimeError("the GHL HTTP client was not built")
    oauth = GhlOAuth(state.ghl_http, state.settings)
    if not oauth.configured:
        raise Problem(503, "Service Unavailable",
                      "GHL OAuth is not configured: set GHL_CLIENT_ID, GHL_CLIENT_SECRET and "
                      "GHL_REDIRECT_URI (or use a Private Integration Token)")
    return oauth


def _bad_callback(detail: str) -> Problem:
    return Problem(400, "Bad Request", detail)


@router.get("/install", status_code=302, response_class=RedirectResponse,
            responses={302: {"description": "to GHL's location chooser"}, 503: {}})
async def install(
    state: StateDep,
    user_type: Annotated[Literal["Location", "Company"], Query(
        description="Location: install on sub-accounts; Company: an agency-level install")] =
        "Location",
) -> RedirectResponse:
    """Start an install: redirect to GHL's authorize page with a one-time `state`
    (valid for 10 minutes, usable once)."""
    oauth = _oauth(state)
    async with state.sessionmaker.begin() as session:
        one_time = await installs.new_state(session, user_type)
    return RedirectResponse(oauth.authorize_url(one_time), status_code=302,
                            headers={"Cache-Control": "no-store"})


@router.get("/callback", responses={400: {}, 502: {}, 503: {}})
async def callback(
    state: StateDep,
    code: str | None = None,
    state_param: Annotated[str | None, Query(alias="state")] = None,
    error: str | None = None,
) -> dict[str, Any]:
    """GHL's redirect after the operator approved: exchange the code and store the encrypted
    token pair per location (an agency install mints a token for each approved location).
    An unknown, expired or already used `state` answers 400."""
    oauth = _oauth(state)
    try:
        cipher = TokenCipher.from_settings(state.settings)
    except ConfigError as exc:
        raise Problem(503, "Service Unavailable", str(exc)) from None
    if not state_param:
        raise _bad_callback("the `state` parameter is missing")
    async with state.sessionmaker.begin() as session:
        user_type = await installs.use_state(session, state_param)
    if user_type is None:
        raise _bad_callback("unknown, expired or already used `state`: start the install again")
    if error:
        raise _bad_callback(f"GHL did not authorise the install: {error[:200]}")
    if not code:
        raise _bad_callback("the `code` parameter is missing")
    try:
        grant = await oauth.exchange_code(code, user_type)
        result = await installs.complete_install(state.sessionmaker, oauth, cipher, grant)
    except (GhlServerError, GhlTimeout) as exc:
        log.warning("GHL install failed upstream", extra={"error": exc.message})
        raise Problem(502, "Bad Gateway", f"GHL did not answer properly: {exc.message}; "
                      "start the install again") from None
    except GhlError as exc:
        raise _bad_callback(f"{exc.message}; start the install again") from None
    return {
        "status": "installed",
        "user_type": result.user_type,
        "company_id": result.company_id,
        "locations": result.locations,
        "pending": result.pending,
    }
