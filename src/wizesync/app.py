"""`create_app()`: the lifespan builds the engine, verifiers and (by default) the worker."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from wizesync import __version__
from wizesync.config import Settings, load_settings
from wizesync.db.engine import create_engine, create_sessionmaker
from wizesync.flows.payments.poller import build_poller
from wizesync.flows.services import build_services
from wizesync.ghl.http_client import build_http_client
from wizesync.inbox.asgi import serve_webhook, webhook_for
from wizesync.inbox.registry import HandlerRegistry, load_handlers
from wizesync.inbox.webhook_docs import openapi_paths as webhook_paths
from wizesync.inbox.worker import Worker
from wizesync.insights.service import build_app_insights
from wizesync.ops.providers import ProviderDirectory
from wizesync.ops.routes import admin as admin_router
from wizesync.ops.routes import router as ops_router
from wizesync.problems import install_handlers
from wizesync.reconcile.routes import router as reconciliation_router
from wizesync.reconcile.runtime import build_scheduler, close_reconciler
from wizesync.state import AppState, build_verifiers
from wizesync.web import install as install_web
from wizesync.web.ghl_oauth import router as ghl_oauth_router
from wizesync.wizehire.openapi import document_wizehire_api

if TYPE_CHECKING:
    from wizesync.flows.services import Services
    from wizesync.mapping import Mapping as SyncMapping

log = logging.getLogger(__name__)


class StandIn(Protocol):
    """What stands in for GHL (and maybe Wizehire) in this process: `wizesync dev`'s sandbox
    (`wizesync_sandbox.dev`). Never asked for in production."""

    settings: Settings  # what the service runs with: GHL's URLs are the stand-in's
    ghl_keys: tuple[str, ...]  # GHL webhook keys trusted beside the configured one

    @property
    def mounts(self) -> Mapping[str, httpx.AsyncBaseTransport]:
        """Hosts the service's HTTP client reaches in-process."""
        ...

    def adapt_mapping(self, mapping: SyncMapping) -> SyncMapping: ...

    def adopt(self, services: Services) -> None: ...

    async def close(self) -> None: ...


# Given the settings and the service's app (to deliver webhooks to), a started stand-in, or None.
StandInFactory = Callable[[Settings, FastAPI], Awaitable[StandIn | None]]


class WizesyncApp(FastAPI):
    """FastAPI, except that the two webhook paths go straight to their handler (`inbox/asgi.py`),
    past FastAPI's middleware, routing and dependencies; the OpenAPI document describes them."""

    def _doc_paths(self) -> tuple[str | None, ...]:
        return (
            self.openapi_url,
            self.docs_url,
            self.redoc_url,
            self.swagger_ui_oauth2_redirect_url,
        )

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = super().openapi()
            schema["paths"] = {**webhook_paths(), **schema["paths"]}
            self.openapi_schema = schema
        return self.openapi_schema

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self._doc_paths():
            state = getattr(self.state, "wizesync", None)
            if state is not None and not state.settings.api_docs_enabled:
                # Production: the API's map is not published unless EXPOSE_API_DOCS says so.
                from wizesync.problems import Problem

                await Problem(404, "Not Found").response()(scope, receive, send)
                return
        if scope["type"] == "http":
            webhook = webhook_for(scope)
            if webhook is not None:
                scope["app"] = self
                await serve_webhook(scope, receive, send, *webhook)
                return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    registry: HandlerRegistry | None = None,
    stand_in: StandInFactory | None = None,
) -> WizesyncApp:
    """`stand_in`: what `wizesync dev` passes, so that in development with no GHL credentials
    GHL (and Wizehire) are the sandbox; production never asks it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        conf = settings or load_settings()
        dev = None if conf.is_production or stand_in is None else await stand_in(conf, app)
        if dev is not None:
            conf = dev.settings
        # No `echo`: it prints plain text to stdout past the JSON formatter and its redaction.
        engine = create_engine(conf.database_url)
        sessionmaker = create_sessionmaker(engine)
        wizehire_verifier, ghl_verifier = build_verifiers(
            conf, extra_ghl_keys=dev.ghl_keys if dev else ()
        )
        ghl_http = build_http_client(conf, mounts=dev.mounts if dev else None)
        state = AppState(
            settings=conf,
            engine=engine,
            sessionmaker=sessionmaker,
            wizehire_verifier=wizehire_verifier,
            ghl_verifier=ghl_verifier,
            ghl_http=ghl_http,
        )
        if not conf.is_production:
            log.warning(
                "DEVELOPMENT MODE: development secrets"
                + (" and the sandbox GHL webhook key" if dev is not None else "")
                + " are accepted; never expose this instance"
            )
        worker = services = None
        if conf.worker == "inprocess":
            handlers = registry or load_handlers(conf.handler_modules)
            services = build_services(conf, sessionmaker, ghl_http)
            if dev is not None:
                dev.adopt(services)
            poller = build_poller(conf, sessionmaker, services)
            scheduler = build_scheduler(conf, sessionmaker, services, ghl_http, app)
            worker = Worker(
                settings=conf,
                sessionmaker=sessionmaker,
                registry=handlers,
                services=services,
                companions=[poller.run, scheduler.run],
            )
            state.wake_worker = worker.wake
            state.worker_id = worker.worker_id
            worker.start()
        state.providers = ProviderDirectory.from_settings(
            conf, sessionmaker, ghl_http, tokens=services.tokens if services else None
        )
        app.state.wizesync = state
        app.state.insights = build_app_insights(
            conf,
            sessionmaker,
            ghl_http,
            services=services,
            adapt_mapping=dev.adapt_mapping if dev else None,
        )
        try:
            yield
        finally:
            if app.state.insights is not None:
                await app.state.insights.close()
            await close_reconciler(app)
            if worker is not None:
                await worker.stop()
            await state.providers.close()
            if dev is not None:
                await dev.close()
            await ghl_http.aclose()
            await engine.dispose()

    app = WizesyncApp(
        title="wizesync",
        version=__version__,
        summary="Wizehire <-> HighLevel payments sync",
        lifespan=lifespan,
    )
    install_handlers(app)
    app.include_router(ghl_oauth_router)
    app.include_router(ops_router)
    app.include_router(admin_router)
    app.include_router(reconciliation_router)
    install_web(app)  # /login, /insights, /reports/*, /static
    document_wizehire_api(app)  # the Wizehire API the service calls, under `webhooks`
    return app
