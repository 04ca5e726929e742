"""The fake GHL as an ASGI app (mounted at `/ghl` by the sandbox server)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from wizesync_sandbox import ghl_auth_routes, ghl_catalog_routes, ghl_payments_routes
from wizesync_sandbox.ghl_http import GhlHttpError, RateLimitHeaders
from wizesync_sandbox.ghl_ledger import Invalid, LedgerError

if TYPE_CHECKING:
    from wizesync_sandbox.core import Sandbox


def create_ghl_app(sb: Sandbox) -> FastAPI:
    app = FastAPI(
        title="wizesync sandbox: fake HighLevel (GHL) API",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )

    @app.exception_handler(GhlHttpError)
    async def ghl_error(request: Request, exc: GhlHttpError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(LedgerError)
    async def ledger_error(request: Request, exc: LedgerError) -> JSONResponse:
        message: str | list[str] = exc.messages if isinstance(exc, Invalid) else exc.message
        error = GhlHttpError(exc.status, message)
        return JSONResponse(error.body, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # NestJS's wording, as GHL answers an unknown route.
        path = request.url.path.removeprefix(request.scope.get("root_path", ""))
        message = (
            f"Cannot {request.method} {path}" if exc.status_code in (404, 405) else str(exc.detail)
        )
        body = {
            "statusCode": exc.status_code,
            "message": message,
            "error": "Not Found" if exc.status_code in (404, 405) else str(exc.detail),
            "traceId": secrets.token_hex(16),
        }
        return JSONResponse(body, status_code=404 if exc.status_code == 405 else exc.status_code)

    app.include_router(ghl_auth_routes.router(sb))
    app.include_router(ghl_catalog_routes.router(sb))
    app.include_router(ghl_payments_routes.router(sb))
    app.add_middleware(RateLimitHeaders, limiter=sb.limiter)
    return app
