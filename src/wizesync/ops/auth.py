"""Who is an operator: bearer `ADMIN_TOKEN` for `/sync-status` and `/admin/*` (open when unset, in
development), and for starting a GHL install (`web/ghl_oauth.py`, never open)."""

from __future__ import annotations

import secrets

from fastapi import Depends, Request

from wizesync.config import Settings
from wizesync.problems import Problem
from wizesync.state import StateDep


def bearer_matches(request: Request, settings: Settings) -> bool:
    """Whether the request carries `Authorization: Bearer <ADMIN_TOKEN>` (False when unset).

    Compared as bytes: a header is Latin-1 text to the server, so a token or header outside
    ASCII is a mismatch (401), never an exception (`compare_digest` refuses non-ASCII str)."""
    token = settings.admin_token
    if token is None or not token.get_secret_value():
        return False
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    expected = token.get_secret_value().encode("utf-8")
    return secrets.compare_digest(given.strip().encode("latin-1", "replace"), expected)


def unauthorized(detail: str = "a valid admin bearer token is required") -> Problem:
    return Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


async def require_admin(request: Request, state: StateDep) -> None:
    if state.settings.admin_token is None:
        return
    if not bearer_matches(request, state.settings):
        raise unauthorized()


AdminDep = Depends(require_admin)
