"""`/admin/reconciliations`: start a run, list runs, one run with its items (paged), its CSV.

Bearer `ADMIN_TOKEN` like every `/admin` endpoint; errors are problem+json (an unknown run 404,
a window that is not one 422 with the field in `errors`).
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict

from wizesync.db import reconcile_repo as repo
from wizesync.db.reconcile_models import CATEGORIES, ReconciliationItem
from wizesync.ops.auth import AdminDep
from wizesync.problems import Problem
from wizesync.reconcile.runs import InvalidWindow, check_window, default_window
from wizesync.reconcile.runtime import reconciler_for
from wizesync.reconcile.views import item_json, run_json
from wizesync.state import StateDep

router = APIRouter(prefix="/admin/reconciliations", tags=["admin"], dependencies=[AdminDep])

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
CSV_BATCH = 1000
CSV_COLUMNS = (
    "category",
    "wizehire_order_id",
    "ghl_order_id",
    "ghl_location_id",
    "wizehire_amount",
    "wizehire_currency",
    "wizehire_status",
    "wizehire_payment_status",
    "wizehire_amount_refunded",
    "ghl_amount",
    "ghl_currency",
    "ghl_payment_status",
    "ghl_amount_refunded",
    "ghl_fulfilled",
    "detail",
    "healed",
)


class StartRun(BaseModel):
    """Every field optional: the default window is the `RECONCILE_WINDOW_DAYS` before now."""

    model_config = ConfigDict(extra="forbid")

    since: datetime | None = None
    until: datetime | None = None
    heal: bool = True


@router.post("", status_code=202, responses={422: {}})
async def start_reconciliation(
    request: Request, state: StateDep, body: Annotated[StartRun | None, Body()] = None
) -> dict[str, Any]:
    """Start a run now; it goes on in this process (or, should it stop, in a worker)."""
    body = body or StartRun()
    default = default_window(state.settings)
    since = _aware(body.since) if body.since else None
    until = _aware(body.until) if body.until else default.until
    if since is None:
        since = until - (default.until - default.since)
    try:
        window = check_window(since, until)
    except InvalidWindow as exc:
        raise Problem(
            422,
            "Unprocessable Content",
            str(exc),
            errors=[{"loc": ["body", "since"], "msg": str(exc)}],
        ) from None
    reconciler = reconciler_for(request.app)
    run_id = await reconciler.start(trigger="manual", window=window, heal=body.heal)
    reconciler.spawn(run_id)
    return {"id": run_id, "status": "running"}


@router.get("")
async def list_reconciliations(
    state: StateDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> dict[str, Any]:
    """Runs without their items, newest first."""
    async with state.sessionmaker() as session:
        runs = await repo.list_runs(session, limit=limit)
    return {"data": [run_json(run) for run in runs]}


@router.get("/{run_id}.csv", response_class=StreamingResponse, responses={404: {}})
async def reconciliation_csv(
    run_id: str, state: StateDep, category: str | None = None
) -> StreamingResponse:
    """Every item of the run as CSV, one row each, streamed a batch at a time."""
    run_number = _run_id(run_id)
    _check_category(category)
    async with state.sessionmaker() as session:
        if await repo.get_run(session, run_number) is None:
            raise Problem(404, "Not Found", f"no reconciliation run {run_id}")

    async def rows() -> AsyncIterator[str]:
        yield _csv_line(CSV_COLUMNS)
        after: int | None = None
        while True:
            async with state.sessionmaker() as session:
                items = await repo.list_items(
                    session, run_number, category=category, after_id=after, limit=CSV_BATCH
                )
            if not items:
                return
            yield "".join(_csv_line(_csv_row(item)) for item in items)
            after = items[-1].id

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="reconciliation-{run_number}.csv"'},
    )


@router.get("/{run_id}", responses={404: {}, 422: {}})
async def show_reconciliation(
    run_id: str,
    state: StateDep,
    category: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> dict[str, Any]:
    """One run with its items, `limit` at a time; `next_cursor` fetches the next page."""
    run_number = _run_id(run_id)
    _check_category(category)
    after = _decode_cursor(cursor)
    async with state.sessionmaker() as session:
        run = await repo.get_run(session, run_number)
        if run is None:
            raise Problem(404, "Not Found", f"no reconciliation run {run_id}")
        items = await repo.list_items(
            session, run_number, category=category, after_id=after, limit=limit + 1
        )
    more = len(items) > limit
    items = items[:limit]
    return {
        **run_json(run),
        "items": [item_json(item) for item in items],
        "next_cursor": _encode_cursor(items[-1].id) if more and items else None,
    }


# --- helpers -------------------------------------------------------------------------------------


def _aware(moment: datetime) -> datetime:
    """A time without a zone is taken as UTC (the service's zone everywhere)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _run_id(value: str) -> int:
    if not value.isdigit():
        raise Problem(404, "Not Found", f"no reconciliation run {value}")
    return int(value)


def _check_category(category: str | None) -> None:
    if category is not None and category not in CATEGORIES:
        msg = f"must be one of {', '.join(CATEGORIES)}"
        raise Problem(
            422,
            "Unprocessable Content",
            f"category {msg}",
            errors=[{"loc": ["query", "category"], "msg": msg}],
        )


def _encode_cursor(after_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after_id}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after = int(raw["after"])
    except (ValueError, KeyError, TypeError):
        raise Problem(
            422,
            "Unprocessable Content",
            "cursor is not one this API gave out",
            errors=[{"loc": ["query", "cursor"], "msg": "not a cursor"}],
        ) from None
    return after


def _csv_row(item: ReconciliationItem) -> tuple[Any, ...]:
    wh = item.wizehire or {}
    ghl = item.ghl or {}
    fulfilled = ghl.get("fulfilled")
    return (
        item.category,
        item.wizehire_order_id,
        item.ghl_order_id,
        item.ghl_location_id,
        wh.get("amount"),
        wh.get("currency"),
        wh.get("status"),
        wh.get("payment_status"),
        wh.get("amount_refunded"),
        ghl.get("amount"),
        ghl.get("currency"),
        ghl.get("payment_status"),
        ghl.get("amount_refunded"),
        "" if fulfilled is None else str(bool(fulfilled)).lower(),
        item.detail,
        str(bool(item.healed)).lower(),
    )


def _csv_line(values: tuple[Any, ...]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(["" if v is None else v for v in values])
    return out.getvalue()
