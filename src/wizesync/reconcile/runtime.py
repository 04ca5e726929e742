"""Where a process keeps its `Reconciler`: the API's admin endpoints start runs on it, and the
worker's scheduler companion fires and resumes runs with it."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync.config import Settings
from wizesync.reconcile.runs import Reconciler
from wizesync.reconcile.schedule import Scheduler


def build_scheduler(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    services: Any,
    http: httpx.AsyncClient,
    app: FastAPI | None = None,
) -> Scheduler:
    """The scheduler companion for a worker; with `app`, the API's endpoints share its
    reconciler (same services, same budget share)."""
    reconciler = Reconciler(
        settings=settings, sessionmaker=sessionmaker, services=services, http=http
    )
    if app is not None:
        app.state.reconciler = reconciler
    return Scheduler(reconciler, settings.reconcile_cron)


def reconciler_for(app: FastAPI) -> Reconciler:
    """The process's reconciler, built on first use when this process runs no worker."""
    existing = getattr(app.state, "reconciler", None)
    if existing is not None:
        return existing
    from wizesync.flows.services import build_services

    state = app.state.wizesync
    assert state.ghl_http is not None
    services = build_services(state.settings, state.sessionmaker, state.ghl_http)
    reconciler = Reconciler(
        settings=state.settings,
        sessionmaker=state.sessionmaker,
        services=services,
        http=state.ghl_http,
    )
    app.state.reconciler = reconciler
    return reconciler


async def close_reconciler(app: FastAPI) -> None:
    reconciler = getattr(app.state, "reconciler", None)
    if reconciler is not None:
        await reconciler.close()
