"""`/login` (a form that takes ADMIN_TOKEN in a POST body, never in a URL) and `/logout` (POST).

A wrong token answers the form again with 401 after a short pause (guessing costs time), the
comparison is constant-time, and a form not opened from this site (no matching login CSRF
cookie) is refused with 403 before the token is even looked at.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from wizesync.state import AppState, get_state
from wizesync.web.auth import AdminDep, safe_next
from wizesync.web.pages import SECURITY_HEADERS, render
from wizesync.web.session import SessionCodec, same_secret

router = APIRouter(tags=["pages"], include_in_schema=False)
StateDep = Annotated[AppState, Depends(get_state)]
FAILED_LOGIN_PAUSE_SECONDS = 0.5


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, state: StateDep, next: str | None = None) -> Response:
    """The login form (no token in the URL: it is POSTed)."""
    target = safe_next(next)
    if state.settings.admin_token is None:
        return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    return _form(request, SessionCodec(state.settings), target)


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    state: StateDep,
    token: Annotated[str, Form(max_length=4096)] = "",
    csrf_token: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/insights",
) -> Response:
    target = safe_next(next)
    expected = state.settings.admin_token
    if expected is None:
        return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    codec = SessionCodec(state.settings)
    if not codec.login_token_ok(request, csrf_token):
        return _form(
            request,
            codec,
            target,
            status_code=403,
            error="The form expired or was not opened from this site: try again.",
        )
    if not same_secret(expected.get_secret_value(), token):
        await asyncio.sleep(FAILED_LOGIN_PAUSE_SECONDS)
        return _form(request, codec, target, status_code=401, error="That is not the token.")
    response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    codec.clear_login_token(response)
    codec.open(response)
    return response


@router.post("/logout")
async def logout(
    request: Request,
    state: StateDep,
    admin: AdminDep,
    csrf_token: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Ends the browser session (a CSRF-checked POST, so no other site can log you out)."""
    if admin.via == "session":
        assert admin.session is not None
        if not same_secret(admin.session.csrf_token, csrf_token):
            return render(
                request,
                "message.html",
                {"title": "Not logged out", "message": "The form was not opened from this site."},
                status_code=403,
            )
    response = RedirectResponse("/login", status_code=303, headers=SECURITY_HEADERS)
    if state.settings.admin_token is not None:
        SessionCodec(state.settings).clear(response)
    return response


def _form(
    request: Request,
    codec: SessionCodec,
    target: str,
    *,
    status_code: int = 200,
    error: str | None = None,
) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {"next": target, "error": error, "csrf_token": token},
        status_code=status_code,
    )
    codec.set_login_token(response, token)
    return response
