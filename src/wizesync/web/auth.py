"""`require_admin`: the one dependency for everything an operator opens, by program or browser.

Accepted: `Authorization: Bearer <ADMIN_TOKEN>` (scripts, curl), or the signed session cookie the
login form sets (browsers). Never a token in the query string: it would end up in logs, history
and Referer headers. With no ADMIN_TOKEN (development only; production refuses to start without
one) everything is open, as `/sync-status` is.

Not authenticated: a browser navigating to a page (GET/HEAD asking for HTML) is sent to
`/login?next=<where it was going>`; anything else gets a 401 problem with `WWW-Authenticate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import Depends, Request

from wizesync.problems import Problem
from wizesync.state import StateDep
from wizesync.web.session import AdminSession, SessionCodec, same_secret


class LoginRequired(Exception):
    """A browser must log in first; answered with a redirect to the login form."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path

    def location(self) -> str:
        return "/login?next=" + quote(self.next_path, safe="/")


@dataclass(frozen=True)
class Admin:
    """Who passed: by bearer token, by session cookie, or nobody needed to (no ADMIN_TOKEN)."""

    via: Literal["bearer", "session", "open"]
    session: AdminSession | None = None


async def require_admin(request: Request, state: StateDep) -> Admin:
    token = state.settings.admin_token
    if token is None:
        return Admin(via="open")
    header = request.headers.get("authorization")
    if header:
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and same_secret(token.get_secret_value(), given.strip()):
            return Admin(via="bearer")
    session = SessionCodec(state.settings).read(request)
    if session is not None:
        return Admin(via="session", session=session)
    if wants_html(request):
        raise LoginRequired(
            safe_next(request.url.path + ("?" + request.url.query if request.url.query else ""))
        )
    raise Problem(
        401,
        "Unauthorized",
        "a valid admin bearer token or a login session is required",
        headers={"WWW-Authenticate": "Bearer"},
    )


AdminDep = Annotated[Admin, Depends(require_admin)]


def wants_html(request: Request) -> bool:
    """A browser navigation: a GET/HEAD whose Accept puts HTML before JSON."""
    if request.method not in ("GET", "HEAD"):
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept


def safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host, no `//` or backslash tricks)."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 32 for c in target)
    ):
        return "/insights"
    if target.startswith(("/login", "/logout")):
        return "/insights"
    return target
