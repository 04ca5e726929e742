"""Bearer `ADMIN_TOKEN` for `/sync-status` and `/admin/*` (open when unset, in development)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request

from wizesync.problems import Problem
from wizesync.state import AppState, get_state


async def require_admin(request: Request, state: Annotated[AppState, Depends(get_state)]) -> None:
    token = state.settings.admin_token
    if token is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    expected = token.get_secret_value()
    if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip(), expected):
        raise Problem(401, "Unauthorized", "a valid admin bearer token is required",
                      headers={"WWW-Authenticate": "Bearer"})


AdminDep = Depends(require_admin)
