"""`/insights/revenue` (JSON), `/insights/revenue.csv` and the `/insights` page: one query, one
report, three renderings. All take the admin bearer token or the browser session."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from wizesync.insights.chart import revenue_chart
from wizesync.insights.query import parse_query
from wizesync.insights.render import report_csv, report_json
from wizesync.insights.service import InsightsService, RevenueView
from wizesync.problems import Problem
from wizesync.web.auth import AdminDep
from wizesync.web.pages import render

router = APIRouter(tags=["insights"])


def get_insights(request: Request) -> InsightsService | None:
    """The lifespan's service; None when GHL is not configured in a way that can work."""
    service: InsightsService | None = getattr(request.app.state, "insights", None)
    return service


def require_insights(
    service: Annotated[InsightsService | None, Depends(get_insights)],
) -> InsightsService:
    if service is None:
        raise _unavailable()
    return service


def _unavailable() -> Problem:
    return Problem(
        503, "Service Unavailable", "revenue insights are not available: GHL is not configured"
    )


InsightsDep = Annotated[InsightsService, Depends(require_insights)]
MaybeInsightsDep = Annotated[InsightsService | None, Depends(get_insights)]
SinceQ = Annotated[
    str | None,
    Query(description="ISO date or date-time (UTC when no zone); default: 30 days before `until`"),
]
UntilQ = Annotated[
    str | None,
    Query(
        description="ISO date-time (exclusive) or date (inclusive); default: the end of today, UTC"
    ),
]
IntervalQ = Annotated[str | None, Query(description="day (default), week or month")]
CurrencyQ = Annotated[str | None, Query(description="three letters; default: the most used")]


@router.get("/insights/revenue")
async def revenue(
    _: AdminDep,
    insights: InsightsDep,
    since: SinceQ = None,
    until: UntilQ = None,
    interval: IntervalQ = None,
    currency: CurrencyQ = None,
) -> dict[str, Any]:
    """Revenue from GHL's transactions on mapped locations: totals, series, by product, by
    location, active subscriptions and MRR, and the last reconciliation's open orders. Definitions:
    docs/INSIGHTS.md."""
    view = await insights.revenue(parse_query(since, until, interval, currency))
    return report_json(view.report)


@router.get(
    "/insights/revenue.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}}
)
async def revenue_csv(
    _: AdminDep,
    insights: InsightsDep,
    since: SinceQ = None,
    until: UntilQ = None,
    interval: IntervalQ = None,
    currency: CurrencyQ = None,
) -> Response:
    """The same figures as CSV, one row per figure set (see docs/INSIGHTS.md)."""
    query = parse_query(since, until, interval, currency)
    view = await insights.revenue(query)
    name = (
        f"revenue-{view.report.currency}-{query.since.date().isoformat()}"
        f"-{query.until.date().isoformat()}.csv"
    )
    return Response(
        report_csv(view.report),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/insights", response_class=HTMLResponse, include_in_schema=False)
async def insights_page(
    request: Request,
    admin: AdminDep,
    insights: MaybeInsightsDep,
    since: SinceQ = None,
    until: UntilQ = None,
    interval: IntervalQ = None,
    currency: CurrencyQ = None,
) -> Response:
    form = {
        "since": since or "",
        "until": until or "",
        "interval": interval or "day",
        "currency": (currency or "").upper(),
    }
    try:
        if insights is None:
            raise _unavailable()  # the page says so, in the page
        view = await insights.revenue(parse_query(since, until, interval, currency))
    except Problem as problem:
        return render(
            request,
            "insights.html",
            {"admin": admin, "nav": "insights", "form": form, "view": None, "problem": problem},
            status_code=problem.status,
        )
    return render(
        request,
        "insights.html",
        {
            "admin": admin,
            "nav": "insights",
            "form": _form_values(view, form),
            "view": view,
            "problem": None,
            "data": report_json(view.report),
            "chart": revenue_chart(view.report),
            "query_string": _query_string(view),
        },
    )


def _form_values(view: RevenueView, given: dict[str, str]) -> dict[str, str]:
    """What the filter form shows: the window actually used (dates; `until` inclusive)."""
    from datetime import timedelta

    q = view.query
    until_day = (q.until - timedelta(microseconds=1)).date()
    return {
        "since": given["since"] or q.since.date().isoformat(),
        "until": given["until"] or until_day.isoformat(),
        "interval": q.interval,
        "currency": view.report.currency,
    }


def _query_string(view: RevenueView) -> str:
    q = view.query
    return urlencode(
        {
            "since": q.since.isoformat().replace("+00:00", "Z"),
            "until": q.until.isoformat().replace("+00:00", "Z"),
            "interval": q.interval,
            "currency": view.report.currency,
        }
    )
