"""`/login` (a form that takes ADMIN_TOKEN in a POST body, never in a URL) and `/logout` (POST).

A wrong token answers the form again with 401 after a short pause (guessing costs time), the
comparison is constant-time, and a form not opened from this site (no matching login CSRF
cookie) is refused with 403 before the token is even looked at. After `MAX_FAILURES` wrong
tokens from one client address within `FAILURE_WINDOW_SECONDS`, that address gets 429 with
`Retry-After` until the window has passed (per process: a brake on guessing, not a lockout).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from wizesync.state import StateDep
from wizesync.web.auth import AdminDep, safe_next
from wizesync.web.pages import SECURITY_HEADERS, render
from wizesync.web.session import SessionCodec, same_secret

router = APIRouter(tags=["pages"], include_in_schema=False)
FAILED_LOGIN_PAUSE_SECONDS = 0.5
MAX_FAILURES = 10
FAILURE_WINDOW_SECONDS = 300.0


class FailedLogins:
    """Recent failed logins per client address (bounded: the oldest addresses are dropped)."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_seconds: float = FAILURE_WINDOW_SECONDS,
        max_clients: int = 10_000,
    ) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self.max_clients = max_clients
        self._seen: dict[str, deque[float]] = {}

    def retry_after(self, client: str, now: float | None = None) -> int:
        """Seconds until `client` may try again; 0 when it may now."""
        now = time.monotonic() if now is None else now
        times = self._seen.get(client)
        if not times:
            return 0
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) < self.max_failures:
            return 0
        return max(1, int(times[0] + self.window - now) + 1)

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._seen.setdefault(client, deque(maxlen=self.max_failures)).append(now)
        while len(self._seen) > self.max_clients:
            self._seen.pop(next(iter(self._seen)))


def _failed_logins(request: Request) -> FailedLogins:
    """One record per app (per process), made on first use."""
    found = getattr(request.app.state, "failed_logins", None)
    if found is None:
        found = request.app.state.failed_logins = FailedLogins()
    return found


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
    client = request.client.host if request.client else "unknown"
    wait = _failed_logins(request).retry_after(client)
    if wait:
        return _form(
            request,
            codec,
            target,
            status_code=429,
            error=f"Too many wrong tokens: try again in {wait} seconds.",
            headers={"Retry-After": str(wait)},
        )
    if not codec.login_token_ok(request, csrf_token):
        return _form(
            request,
            codec,
            target,
            status_code=403,
            error="The form expired or was not opened from this site: try again.",
        )
    if not same_secret(expected.get_secret_value(), token):
        _failed_logins(request).failed(client)
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
    headers: dict[str, str] | None = None,
) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {"next": target, "error": error, "csrf_token": token},
        status_code=status_code,
        headers=headers,
    )
    codec.set_login_token(response, token)
    return response
