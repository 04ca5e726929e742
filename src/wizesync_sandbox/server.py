"""The sandbox as one ASGI app: fake GHL at `/ghl`, fake Wizehire at `/wizehire`, fake payment
gateways at `/stripe`, `/nmi`, `/authorize_net`, the control plane at `/_sandbox`,
`GET /health`; fault injection wraps all the fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from wizesync_sandbox import admin, admin_ghl, admin_wizehire
from wizesync_sandbox.core import Sandbox
from wizesync_sandbox.defaults import seed_defaults
from wizesync_sandbox.faults import FaultMiddleware
from wizesync_sandbox.ghl_app import create_ghl_app
from wizesync_sandbox.settings import SandboxConfig
from wizesync_sandbox.wizehire_app import create_wizehire_app


def create_sandbox_app(
    config: SandboxConfig | None = None,
    *,
    sandbox: Sandbox | None = None,
    http: httpx.AsyncClient | None = None,
    seed: bool = False,
) -> FastAPI:
    """`http` is the client the sandbox sends webhooks with (tests pass one bound to the service
    app); without one, the lifespan makes a real one."""
    sb = sandbox or Sandbox.build(config, http=http)
    if seed:
        seed_defaults(sb)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = sb.outbox.http is None
        if own:
            sb.outbox.http = httpx.AsyncClient()
        try:
            yield
        finally:
            await sb.outbox.close()
            if own and sb.outbox.http is not None:
                await sb.outbox.http.aclose()
                sb.outbox.http = None

    app = FastAPI(
        title="wizesync sandbox",
        summary="Fake GHL and fake Wizehire for development",
        lifespan=lifespan,
    )
    app.state.sandbox = sb

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "ghl": "/ghl",
            "wizehire": "/wizehire",
            "control_plane": "/_sandbox",
            "locations": len(sb.store.locations),
        }

    app.include_router(admin.router(sb))
    app.include_router(admin_ghl.router(sb))
    app.include_router(admin_wizehire.router(sb))
    from wizesync_sandbox.gateways import routers as gateway_routers

    for gateway_router in gateway_routers(sb, sb.gateways):
        app.include_router(gateway_router)
    app.mount("/ghl", create_ghl_app(sb))
    app.mount("/wizehire", create_wizehire_app(sb))
    app.add_middleware(FaultMiddleware, faults=sb.faults)
    return app
