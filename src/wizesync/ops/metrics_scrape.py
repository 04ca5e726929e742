"""What `/metrics` does on each scrape: check `METRICS_TOKEN`, then refresh the gauges that are
read from the database (queue, flows, GHL budgets and installs, poller), so any replica reports
the whole system whichever process did the work.

Each part is refreshed on its own: a part that fails (e.g. the database briefly away) keeps its
last values and is logged, and the scrape still answers with everything else. The per-flow
counts of the last 24 h are refreshed at most once a minute (see `PARTS`).
"""

from __future__ import annotations

import logging
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from wizesync.ops import metrics, status
from wizesync.problems import Problem
from wizesync.state import AppState, StateDep

log = logging.getLogger(__name__)


async def require_metrics_token(request: Request, state: StateDep) -> None:
    """Bearer `METRICS_TOKEN` when it is set; open otherwise (a private network's choice)."""
    token = state.settings.metrics_token
    if token is None or not token.get_secret_value():
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        given.strip().encode(), token.get_secret_value().encode()
    ):
        raise Problem(
            401,
            "Unauthorized",
            "a valid metrics bearer token (METRICS_TOKEN) is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


MetricsAuthDep = Depends(require_metrics_token)


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


async def _queue(session: AsyncSession, state: AppState) -> None:
    summary = await status.queue_summary(session)
    for name, count in summary["counts"].items():
        metrics.QUEUE_DEPTH.labels(status=name).set(count)
    metrics.QUEUE_OLDEST_AGE.set(summary["oldest_queued_age_seconds"])


async def _flows(session: AsyncSession, state: AppState) -> None:
    flows = await status.flow_summary(session)
    metrics.FLOW_EVENTS_24H.clear()
    metrics.FLOW_LAST_SUCCESS.clear()
    for flow, row in flows.items():
        metrics.FLOW_EVENTS_24H.labels(flow=flow, outcome="success").set(row["successes_24h"])
        metrics.FLOW_EVENTS_24H.labels(flow=flow, outcome="failure").set(row["failures_24h"])
        last = _ts(row["last_success_at"])
        if last is not None:
            metrics.FLOW_LAST_SUCCESS.labels(flow=flow).set(last)


async def _ghl(session: AsyncSession, state: AppState) -> None:
    installs = await status.installation_summary(session, state.settings)
    for gauge in (
        metrics.GHL_BUDGET_LIMIT,
        metrics.GHL_BUDGET_REMAINING,
        metrics.GHL_BUDGET_PAUSED,
        metrics.GHL_DAILY_REMAINING,
        metrics.GHL_NEEDS_REAUTH,
    ):
        gauge.clear()
    for entry in installs:
        location_id = entry.get("location_id")
        if not location_id:
            continue  # an agency row: budgets and syncs belong to locations
        metrics.GHL_NEEDS_REAUTH.labels(location_id=location_id).set(
            1 if entry.get("needs_reauth") else 0
        )
        rate = entry.get("rate_limit") or {}
        if rate:
            metrics.GHL_BUDGET_LIMIT.labels(location_id=location_id).set(rate["limit"])
            metrics.GHL_BUDGET_REMAINING.labels(location_id=location_id).set(rate["remaining"])
            metrics.GHL_BUDGET_PAUSED.labels(location_id=location_id).set(
                rate["paused_for_seconds"]
            )
            if rate.get("daily_remaining") is not None:
                metrics.GHL_DAILY_REMAINING.labels(location_id=location_id).set(
                    rate["daily_remaining"]
                )


async def _poller(session: AsyncSession, state: AppState) -> None:
    summary = await status.poller_summary(session)
    metrics.POLLER_LAST_SUCCESS.clear()
    for row in summary["locations"]:
        last = _ts(row["last_success_at"])
        if last is not None:
            metrics.POLLER_LAST_SUCCESS.labels(location_id=row["location_id"]).set(last)
    metrics.UNMATCHED_GHL_ORDERS.set(summary["unmatched_ghl_orders"])


Part = Callable[[AsyncSession, AppState], Awaitable[None]]

# (name, refresh, at most once per N seconds). The flow part aggregates the whole attempt log
# (measured: ~60 ms at 50,000 attempts on SQLite, ~40 ms on PostgreSQL, growing with the log),
# so it is refreshed at most once a minute however often Prometheus scrapes; the others are
# index look-ups of a few ms and are fresh on every scrape.
PARTS: tuple[tuple[str, Part, float], ...] = (
    ("queue", _queue, 0.0),
    ("flows", _flows, 60.0),
    ("ghl", _ghl, 0.0),
    ("poller", _poller, 0.0),
)
# Per app (its session factory): each app's gauges describe its own database.
_refreshed_at: weakref.WeakKeyDictionary[Any, dict[str, float]] = weakref.WeakKeyDictionary()


async def refresh_from_database(state: AppState) -> None:
    now = time.monotonic()
    refreshed = _refreshed_at.setdefault(state.sessionmaker, {})
    for name, part, min_interval in PARTS:
        last = refreshed.get(name)
        if last is not None and now - last < min_interval:
            continue
        try:
            async with state.sessionmaker() as session:
                await part(session, state)
            refreshed[name] = now
        except Exception as exc:
            log.warning("metrics: gauges not refreshed", exc_info=exc, extra={"part": name})
