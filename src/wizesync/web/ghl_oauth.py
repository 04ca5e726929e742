"""`/oauth/ghl/*`: installing the marketplace app (the browser's side of OAuth).

Only an operator starts an install (`require_installer`), and the one-time `state` it makes is
bound to the operator's browser by an HttpOnly cookie the callback checks: a callback link
someone else started (login CSRF: "install my GHL account into your service") is refused.
States made by `wizesync ghl install-url` (an operator with database access) carry no binding.
"""

from __future__ import annotations

import logging
import secrets
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse

from wizesync.config import ConfigError
from wizesync.ghl import installs
from wizesync.ghl.crypto import TokenCipher
from wizesync.ghl.errors import GhlError, GhlServerError, GhlTimeout
from wizesync.ghl.oauth import GhlOAuth
from wizesync.ops.auth import unauthorized
from wizesync.problems import Problem
from wizesync.state import AppState, StateDep
from wizesync.web.auth import require_admin

log = logging.getLogger(__name__)
router = APIRouter(prefix="/oauth/ghl", tags=["ghl"])
INSTALL_COOKIE = "wizesync_ghl_install"
COOKIE_PATH = "/oauth/ghl"


async def require_installer(request: Request, state: StateDep) -> None:
    """Who may start an install: an operator, by the admin bearer token or the browser session
    the login form sets (a browser without one is sent to log in first). Never open, not even
    without ADMIN_TOKEN in development."""
    if state.settings.admin_token is None:
        raise unauthorized(
            "installs need an operator: set ADMIN_TOKEN and send it as a bearer "
            "token (or use `wizesync ghl install-url`)"
        )
    await require_admin(request, state)


InstallerDep = Depends(require_installer)


def _oauth(state: AppState) -> GhlOAuth:
    if state.ghl_http is None:  # pragma: no cover - the lifespan always builds it
        raise RuntimeError("the GHL HTTP client was not built")
    oauth = GhlOAuth(state.ghl_http, state.settings)
    if not oauth.configured:
        raise Problem(
            503,
            "Service Unavailable",
            "GHL OAuth is not configured: set GHL_CLIENT_ID, GHL_CLIENT_SECRET and "
            "GHL_REDIRECT_URI (or use a Private Integration Token)",
        )
    return oauth


def _bad_callback(detail: str) -> Problem:
    return Problem(400, "Bad Request", detail)


@router.get(
    "/install",
    status_code=302,
    response_class=RedirectResponse,
    dependencies=[InstallerDep],
    responses={302: {"description": "to GHL's location chooser"}, 401: {}, 503: {}},
)
async def install(
    state: StateDep,
    user_type: Annotated[
        Literal["Location", "Company"],
        Query(description="Location: install on sub-accounts; Company: an agency-level install"),
    ] = "Location",
) -> RedirectResponse:
    """Start an install (admin bearer token): redirect to GHL's authorize page with a one-time
    `state` (valid for 10 minutes, usable once, only from the browser that started it: an
    HttpOnly cookie carries it to the callback)."""
    oauth = _oauth(state)
    async with state.sessionmaker.begin() as session:
        one_time = await installs.new_state(session, user_type, browser_bound=True)
    response = RedirectResponse(
        oauth.authorize_url(one_time), status_code=302, headers={"Cache-Control": "no-store"}
    )
    redirect = state.settings.ghl_redirect_uri or ""
    response.set_cookie(
        INSTALL_COOKIE,
        one_time,
        max_age=int(installs.STATE_TTL.total_seconds()),
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        # GHL's redirect back is a top-level navigation: SameSite=Lax still sends it.
        secure=urlsplit(redirect).scheme == "https",
    )
    return response


def _check_browser_binding(request: Request, state_param: str) -> None:
    """A state `/install` made is usable only with the cookie it set in the same browser."""
    if not installs.is_browser_bound(state_param):
        return
    cookie = request.cookies.get(INSTALL_COOKIE, "")
    if not secrets.compare_digest(
        cookie.encode("latin-1", "replace"), state_param.encode("latin-1", "replace")
    ):
        raise _bad_callback(
            "this install was not started in this browser (its cookie is "
            "missing or belongs to another install): start the install again"
        )


@router.get("/callback", responses={400: {}, 502: {}, 503: {}})
async def callback(
    request: Request,
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
    _check_browser_binding(request, state_param)
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
        raise Problem(
            502,
            "Bad Gateway",
            f"GHL did not answer properly: {exc.message}; start the install again",
        ) from None
    except GhlError as exc:
        raise _bad_callback(f"{exc.message}; start the install again") from None
    return {
        "status": "installed",
        "user_type": result.user_type,
        "company_id": result.company_id,
        "locations": result.locations,
        "pending": result.pending,
    }
