"""Operators' endpoints: health, readiness, sync status, metrics, and the events admin API."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Path, Query, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from wizesync.db import heartbeat_repo, inbox_repo, schema_repo
from wizesync.db.base import utcnow
from wizesync.db.migrate import head_revision
from wizesync.ops import status
from wizesync.ops.auth import AdminDep
from wizesync.ops.metrics_scrape import MetricsAuthDep, refresh_from_database
from wizesync.problems import Problem
from wizesync.state import StateDep

log = logging.getLogger(__name__)
router = APIRouter()


@router.get("/health", tags=["ops"])
async def health() -> dict[str, str]:
    """Liveness: 200 while the process runs. Touches nothing else."""
    return {"status": "ok"}


@router.get("/ready", tags=["ops"], responses={503: {}})
async def ready(state: StateDep) -> JSONResponse:
    """Readiness: the database answers, migrations are at head, a worker beat recently."""
    reasons: list[str] = []
    checks: dict[str, Any] = {}
    try:
        async with asyncio.timeout(5):
            async with state.engine.connect() as conn:
                await schema_repo.ping(conn)
                current = await schema_repo.current_revision(conn)
            last_beat = None
            if current is not None:  # never migrated: no heartbeat table to read either
                async with state.sessionmaker() as session:
                    last_beat = await heartbeat_repo.latest_beat(session)
    except Exception as exc:
        log.warning("readiness: database check failed", exc_info=exc)
        return _not_ready(["database is not answering"], {"database": "down"})
    checks["database"] = "ok"
    head = head_revision()
    checks["migrations"] = {"current": current, "head": head}
    if current != head:
        reasons.append(
            f"migrations are not at head (database {current or 'never migrated'}, "
            f"code {head}): run `wizesync migrate`"
        )
    fresh_within = max(30.0, 3 * min(10.0, state.settings.worker_lease_seconds / 3))
    age = (utcnow() - last_beat).total_seconds() if last_beat else None
    checks["worker"] = {"last_heartbeat_age_seconds": round(age, 1) if age is not None else None}
    if age is None or age > fresh_within:
        reasons.append(
            "no worker has a fresh heartbeat"
            + (" (WORKER=off: start `wizesync worker`)" if state.settings.worker == "off" else "")
        )
    if reasons:
        return _not_ready(reasons, checks)
    return JSONResponse({"status": "ready", "checks": checks})


def _not_ready(reasons: list[str], checks: dict[str, Any]) -> JSONResponse:
    return Problem(
        503, "Service Unavailable", "; ".join(reasons), extra={"reasons": reasons, "checks": checks}
    ).response()


@router.get("/sync-status", tags=["ops"], dependencies=[AdminDep])
async def sync_status(state: StateDep) -> dict[str, Any]:
    """Queue, flows, dead letters, GHL installations (with each location's white-label
    provider, cached; "unknown" with the reason when GHL cannot say) and the poller at a glance
    (no customer data)."""
    async with state.sessionmaker() as session:
        summary = {
            "queue": await status.queue_summary(session),
            "flows": await status.flow_summary(session),
            "dead_letters": await status.dead_letter_summary(session),
            "installations": await status.installation_summary(session, state.settings),
            "poller": await status.poller_summary(session),
            "reconciliation": await status.reconciliation_summary(session),
        }
    # After the session is closed: reading GHL (cached, bounded wait) holds no connection.
    await status.add_whitelabel_providers(summary["installations"], state.providers)
    return summary


@router.get(
    "/metrics",
    tags=["ops"],
    response_class=Response,
    responses={401: {}},
    dependencies=[MetricsAuthDep],
)
async def prometheus_metrics(state: StateDep) -> Response:
    """Prometheus text exposition; the queue, flow, GHL and poller gauges are read fresh from
    the database. Bearer `METRICS_TOKEN` when it is set."""
    await refresh_from_database(state)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


# --- admin ---------------------------------------------------------------------------------------

admin = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminDep])

# Inbox ids are BIGINT: larger ids name no event (404), and a larger `before_id` bounds nothing.
MAX_EVENT_ID = 2**63 - 1
EventId = Annotated[
    int,
    Path(
        ge=1,
        description="the inbox event's id (1 to 2^63-1)",
        json_schema_extra={"maximum": MAX_EVENT_ID},
    ),
]

StatusFilter = Literal["queued", "running", "retry", "done", "dead", "ignored", "quarantined"]


def event_summary(event: Any) -> dict[str, Any]:
    return {
        "id": event.id,
        "source": event.source,
        "event_id": event.event_id,
        "type": event.type,
        "ordering_key": event.ordering_key,
        "status": event.status,
        "attempts": event.attempts,
        "next_attempt_at": event.next_attempt_at,
        "received_at": event.received_at,
        "handled_at": event.handled_at,
        "last_error": event.last_error,
    }


@admin.get("/events")
async def list_events(
    state: StateDep,
    status_: Annotated[StatusFilter | None, Query(alias="status")] = None,
    source: Literal["wizehire", "ghl"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before_id: Annotated[
        int | None,
        Query(
            ge=1,
            description="only events with a smaller id (paging); 1 to 2^63-1",
            json_schema_extra={"maximum": MAX_EVENT_ID},
        ),
    ] = None,
) -> dict[str, Any]:
    """Inbox rows, newest first, without payload bodies."""
    if before_id is not None and before_id > MAX_EVENT_ID:
        before_id = None  # every stored id is smaller
    async with state.sessionmaker() as session:
        events = await inbox_repo.list_events(
            session, status=status_, source=source, limit=limit, before_id=before_id
        )
    return {"data": [event_summary(e) for e in events]}


@admin.get("/events/{event_id}", responses={404: {}})
async def show_event(event_id: EventId, state: StateDep) -> dict[str, Any]:
    """One event with every attempt: when, outcome, error and the outbound calls it made."""
    if event_id > MAX_EVENT_ID:
        raise Problem(404, "Not Found", f"no event {event_id}")
    async with state.sessionmaker() as session:
        event = await inbox_repo.get_event(session, event_id)
    if event is None:
        raise Problem(404, "Not Found", f"no event {event_id}")
    return {
        **event_summary(event),
        "payload": event.payload,
        "attempt_log": [
            {
                "attempt": a.attempt,
                "worker_id": a.worker_id,
                "started_at": a.started_at,
                "finished_at": a.finished_at,
                "outcome": a.outcome,
                "error": a.error,
                "outbound_calls": a.outbound_calls or [],
            }
            for a in event.attempt_log
        ],
    }


@admin.post("/events/{event_id}/replay", status_code=202, responses={404: {}, 409: {}})
async def replay_event(
    event_id: EventId, state: StateDep, background: BackgroundTasks
) -> dict[str, Any]:
    """Re-queue a dead, quarantined, ignored or done event. Quarantined bodies are re-read."""
    from wizesync.inbox.replay import replay

    if event_id > MAX_EVENT_ID:
        raise Problem(404, "Not Found", f"no event {event_id}")
    try:
        result = await replay(state.sessionmaker, event_id)
    except ValueError as exc:
        raise Problem(409, "Conflict", str(exc)) from None
    if result is None:
        raise Problem(404, "Not Found", f"no event {event_id}")
    background.add_task(state.wake_worker)
    return {"id": event_id, "status": result}
