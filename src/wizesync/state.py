"""What the lifespan builds once and every request shares: settings, engine, verifiers, worker."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

import httpx
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from wizesync.config import Settings
from wizesync.inbox.signatures import GhlVerifier, WizehireVerifier


class ProviderLookup(Protocol):
    """Each location's white-label providers for /sync-status: `ops.providers.ProviderDirectory`
    (named here by shape: the state every layer reads must not import a feature)."""

    async def lookup(self, location_ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...

    async def close(self) -> None: ...


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    wizehire_verifier: WizehireVerifier
    ghl_verifier: GhlVerifier
    # Set when this process also runs the worker: wakes it once a committed event falls due
    # (the argument: in how many seconds; 0 = now).
    wake_worker: Callable[..., None] = field(default=lambda _after=0.0: None)
    worker_id: str | None = None
    # The shared HTTP client for GHL (API and OAuth calls), closed by the lifespan.
    ghl_http: httpx.AsyncClient | None = None
    # Each location's white-label providers for /sync-status (wizesync.ops.providers).
    providers: ProviderLookup | None = None


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.wizesync
    return state


# A route's `state: StateDep` parameter: what the lifespan built.
StateDep = Annotated[AppState, Depends(get_state)]


def build_verifiers(
    settings: Settings, *, extra_ghl_keys: Sequence[str] = ()
) -> tuple[WizehireVerifier, GhlVerifier]:
    """`extra_ghl_keys`: trusted beside the configured GHL key, outside production only (the
    sandbox's, while `wizesync dev` runs it in this process: its private half is public)."""
    extra = [] if settings.is_production else list(extra_ghl_keys)
    ghl_keys = [settings.ghl_public_key_pem, *extra]
    return (
        WizehireVerifier(settings.wizehire_webhook_secrets),
        GhlVerifier(ghl_keys, settings.ghl_rsa_public_key_pem),
    )
