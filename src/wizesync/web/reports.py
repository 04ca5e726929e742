"""Reconciliation reports for people: `/reports/reconciliation` (the runs) and
`/reports/reconciliation/{id}` (a run's items, by category, paged), plus
`/reports/reconciliation/{id}.csv` (the admin API's CSV, streamed) for a browser's session.

The items are the contract's (`wizesync.reconcile.views.item_json`); the page only arranges them.
Paging is by item id (`after`), the same keyset the admin API's cursor walks.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from wizesync.db import reconcile_repo
from wizesync.db.reconcile_models import CATEGORIES
from wizesync.problems import Problem
from wizesync.reconcile.routes import reconciliation_csv
from wizesync.reconcile.views import counts_json, item_json, run_json
from wizesync.state import StateDep
from wizesync.web.auth import AdminDep
from wizesync.web.pages import render

router = APIRouter(tags=["pages"], include_in_schema=False)
PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@router.get("/reports/reconciliation", response_class=HTMLResponse)
async def runs_page(request: Request, admin: AdminDep, state: StateDep) -> Response:
    async with state.sessionmaker() as session:
        runs = await reconcile_repo.list_runs(session, limit=100)
    return render(
        request,
        "reconciliation_runs.html",
        {
            "admin": admin,
            "nav": "reconciliation",
            "runs": [(run_json(r), r) for r in runs],
            "categories": CATEGORIES,
        },
    )


@router.get("/reports/reconciliation/{run_id}.csv")
async def run_csv(
    run_id: int, _: AdminDep, state: StateDep, category: Annotated[str | None, Query()] = None
) -> StreamingResponse:
    """The admin API's CSV (`/admin/reconciliations/{id}.csv`, the same rows), for a browser's
    session rather than a bearer token."""
    return await reconciliation_csv(str(run_id), state, category)


@router.get("/reports/reconciliation/{run_id}", response_class=HTMLResponse)
async def run_page(
    request: Request,
    run_id: int,
    admin: AdminDep,
    state: StateDep,
    category: Annotated[str | None, Query()] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = PAGE_SIZE,
) -> Response:
    if category is not None and category not in CATEGORIES:
        raise Problem(
            422,
            "Unprocessable Content",
            "the request is invalid",
            errors=[{"loc": "query.category", "msg": "must be one of: " + ", ".join(CATEGORIES)}],
        )
    async with state.sessionmaker() as session:
        run = await reconcile_repo.get_run(session, run_id)
        if run is None:
            return render(
                request,
                "message.html",
                {
                    "admin": admin,
                    "title": "No such report",
                    "message": f"There is no reconciliation run {run_id}.",
                },
                status_code=404,
            )
        items = await reconcile_repo.list_items(
            session, run_id, category=category, after_id=after, limit=limit + 1
        )
        # A running run's counts are "so far"; count the stored items for the tabs then.
        counts = counts_json(
            run.counts
            if run.status != "running"
            else await reconcile_repo.count_items(session, run_id)
        )
    more = len(items) > limit
    items = items[:limit]
    return render(
        request,
        "reconciliation_report.html",
        {
            "admin": admin,
            "nav": "reconciliation",
            "run": run_json(run),
            "counts": counts,
            "categories": CATEGORIES,
            "total": sum(counts.values()),
            "category": category,
            "limit": limit,
            "items": [item_json(i) for i in items],
            "after": after,
            "next_after": items[-1].id if more and items else None,
        },
    )
