"""`create_app()`: the lifespan builds the engine, verifiers and (by default) the worker."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from wizesync import __version__
from wizesync.config import Settings, load_settings
from wizesync.db.engine import create_engine, create_sessionmaker
from wizesync.inbox.registry import HandlerRegistry, load_handlers
from wizesync.inbox.routes import router as webhooks_router
from wizesync.inbox.worker import Worker
from wizesync.ops.routes import admin as admin_router
from wizesync.ops.routes import router as ops_router
from wizesync.problems import install_handlers
from wizesync.state import AppState, build_verifiers

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None, *, registry: HandlerRegistry | None = None
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        conf = settings or load_settings()
        engine = create_engine(conf.database_url, echo=conf.log_level.upper() == "DEBUG")
        sessionmaker = create_sessionmaker(engine)
        wizehire_verifier, ghl_verifier = build_verifiers(conf)
        state = AppState(
            settings=conf,
            engine=engine,
            sessionmaker=sessionmaker,
            wizehire_verifier=wizehire_verifier,
            ghl_verifier=ghl_verifier,
        )
        if not conf.is_production:
            log.warning("DEVELOPMENT MODE: development secrets and the sandbox GHL webhook key "
                        "are accepted; never expose this instance")
        worker = None
        if conf.worker == "inprocess":
            handlers = registry or load_handlers(conf.handler_modules)
            worker = Worker(settings=conf, sessionmaker=sessionmaker, registry=handlers)
            state.wake_worker = worker.wake
            state.worker_id = worker.worker_id
            worker.start()
        app.state.wizesync = state
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop()
            await engine.dispose()

    app = FastAPI(
        title="wizesync",
        version=__version__,
        summary="Wizehire <-> HighLevel payments sync",
        lifespan=lifespan,
    )
    install_handlers(app)
    app.include_router(webhooks_router)
    app.include_router(ops_router)
    app.include_router(admin_router)
    return app
