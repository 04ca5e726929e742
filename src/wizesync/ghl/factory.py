"""A GHL client built from the settings, for the places outside the flows that talk to GHL: the
`wizesync ghl providers` commands, `wizesync doctor` and `/sync-status`.

The flows get theirs from `wizesync.flows.services.build_services`; this builds the same pieces
(the token provider of the configured mode and the budget shared through the database), so a
command's calls count against the same per-location budget as the workers'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync.config import Settings
from wizesync.db import install_repo
from wizesync.ghl.client import GhlClient
from wizesync.ghl.limits import RateLimiter, TokenProvider


@dataclass
class GhlAccess:
    client: GhlClient
    tokens: TokenProvider
    limiter: RateLimiter

    async def close(self) -> None:
        """Writes what the limiter learned but has not stored yet."""
        close = getattr(self.limiter, "close", None)
        if close is not None:
            await close()


def build_ghl_access(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    *,
    tokens: TokenProvider | None = None,
    **client_options: Any,
) -> GhlAccess:
    """Raises ConfigError when GHL is not configured in a way that can work (production).
    `tokens`: share a process's token provider (one token cache, one refresh at a time)."""
    from wizesync.ghl.ratelimit import DbRateLimiter
    from wizesync.ghl.tokens import build_token_provider

    tokens = tokens or build_token_provider(settings, sessionmaker, http)
    limiter = DbRateLimiter(sessionmaker, settings)
    client = GhlClient(
        http,
        base_url=settings.ghl_api_url,
        version=settings.ghl_api_version,
        tokens=tokens,
        limiter=limiter,
        **client_options,
    )
    return GhlAccess(client=client, tokens=tokens, limiter=limiter)


def auth_mode(settings: Settings) -> str:
    """Which of the contract's two modes the settings select (PIT wins, as in the token
    provider), or "none"."""
    if settings.ghl_private_token is not None:
        return "pit"
    if settings.ghl_client_id:
        return "oauth"
    return "none"


async def configured_locations(settings: Settings, session: AsyncSession) -> list[str]:
    """The locations this deployment can call: the Private Integration Token's one, else every
    OAuth-installed location that is not uninstalled."""
    if settings.ghl_private_token is not None:
        return [settings.ghl_location_id] if settings.ghl_location_id else []
    return [
        row.location_id
        for row in await install_repo.list_installations(session)
        if row.location_id is not None and row.uninstalled_at is None
    ]
