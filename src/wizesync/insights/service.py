"""Revenue insights for a query: GHL's facts (`source`), the last reconciliation run's open items
(the database), and the pure rules (`figures`) put together. Built once in the lifespan.

GHL failures become problems in words: a rate limit or an outage 503 with `Retry-After` (the
figures can be asked again), anything else 502 naming the location.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync.db import insights_repo, reconcile_repo
from wizesync.db.reconcile_models import CATEGORIES, ReconciliationRun
from wizesync.ghl.errors import GhlError, GhlRateLimited, GhlServerError
from wizesync.insights.figures import (
    RevenueReport,
    UnreconciledItem,
    choose_currency,
    currencies_used,
    revenue_report,
    unreconciled_total,
)
from wizesync.insights.query import RevenueQuery
from wizesync.insights.source import GhlRevenueSource
from wizesync.problems import Problem

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from wizesync.config import Settings
    from wizesync.ghl.limits import TokenProvider
    from wizesync.mapping import Mapping

log = logging.getLogger(__name__)
OPEN_CATEGORIES = tuple(c for c in CATEGORIES if c != "matched")
_PAGE = 1000


@dataclass
class RevenueView:
    """A report with what a page shows beside it."""

    report: RevenueReport
    query: RevenueQuery
    currencies: list[str]  # used in the window, most used first (the page's choices)
    last_run: ReconciliationRun | None
    open_counts: dict[str, int]  # the last run's items not matched, by category


class InsightsService:
    def __init__(
        self,
        source: GhlRevenueSource,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        close: Any = None,
    ) -> None:
        self.source = source
        self.sessionmaker = sessionmaker
        self._close = close

    async def close(self) -> None:
        if self._close is not None:
            await self._close()

    async def revenue(self, query: RevenueQuery) -> RevenueView:
        try:
            facts = await self.source.read(query.since, query.until)
        except GhlError as exc:
            raise _ghl_problem(exc) from exc
        payments = [p for f in facts for p in f.payments]
        subscriptions = [s for f in facts for s in f.subscriptions]
        currency = query.currency or choose_currency(payments, subscriptions, query.window)
        run, unreconciled = await self._unreconciled(currency)
        report = revenue_report(
            payments,
            subscriptions,
            unreconciled,
            window=query.window,
            currency=currency,
        )
        open_counts = {c: int((run.counts or {}).get(c, 0)) for c in OPEN_CATEGORIES} if run else {}
        return RevenueView(
            report=report,
            query=query,
            currencies=currencies_used(payments, query.window),
            last_run=run,
            open_counts=open_counts,
        )

    async def _unreconciled(
        self, currency: str
    ) -> tuple[ReconciliationRun | None, tuple[int, Decimal]]:
        """The last finished run, and (orders, amount) of its items not `matched` in
        `currency`, summed a page at a time (a run can hold 100,000 open items)."""
        orders, amount = 0, Decimal(0)
        async with self.sessionmaker() as session:
            run = await reconcile_repo.last_finished_run(session)
            if run is None:
                return None, (orders, amount)
            for category in OPEN_CATEGORIES:
                after: int | None = None
                while True:
                    page = await reconcile_repo.list_items(
                        session, run.id, category=category, after_id=after, limit=_PAGE
                    )
                    n, total = unreconciled_total(
                        (
                            UnreconciledItem(category=i.category, wizehire=i.wizehire, ghl=i.ghl)
                            for i in page
                        ),
                        currency,
                    )
                    orders, amount = orders + n, amount + total
                    if len(page) < _PAGE:
                        break
                    after = page[-1].id
                    session.expunge_all()  # keep the session's identity map small
        return run, (orders, amount)


def build_insights(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    mapping: Mapping,
    *,
    tokens: TokenProvider | None = None,
) -> InsightsService:
    """The service as the lifespan builds it. Its GHL calls pass the budget every process shares
    (the database rate limiter) and, on top, a share of it (`reconcile.budget.ShareLimiter`) that
    keeps a quarter of each location's window free for the live sync whatever insights read."""
    from wizesync.ghl.client import GhlClient
    from wizesync.ghl.factory import build_ghl_access
    from wizesync.reconcile.budget import ShareLimiter

    access = build_ghl_access(settings, sessionmaker, http, tokens=tokens)
    limiter = ShareLimiter(
        access.limiter,
        limit=settings.ghl_rate_limit_max,
        window_seconds=settings.ghl_rate_limit_window_seconds,
        reserve=max(1, settings.ghl_rate_limit_max // 4),
    )
    # A request waits little for the shared budget: better a 503 "ask again" than a page that
    # hangs.
    client = GhlClient(
        http,
        base_url=settings.ghl_api_url,
        version=settings.ghl_api_version,
        tokens=access.tokens,
        limiter=limiter,
        max_rate_limit_wait=10.0,
    )

    async def known_items(location_id: str, order_ids: list[str]) -> dict[str, list[Any]]:
        async with sessionmaker() as session:
            return await insights_repo.invoice_order_items(session, location_id, order_ids)

    source = GhlRevenueSource(
        client, mapping, cache_seconds=settings.insights_cache_seconds, known_items=known_items
    )
    return InsightsService(source, sessionmaker, close=access.close)


def _ghl_problem(exc: GhlError) -> Problem:
    log.warning("insights: reading GHL failed", exc_info=exc)
    if isinstance(exc, GhlRateLimited | GhlServerError):
        delay = int(getattr(exc, "delay", 10) or 10)
        return Problem(
            503,
            "Service Unavailable",
            f"GHL is busy or not answering ({exc.message}); ask again shortly",
            headers={"Retry-After": str(max(delay, 1))},
        )
    return Problem(502, "Bad Gateway", f"GHL refused to give the figures: {exc.message}")


def build_app_insights(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    *,
    services: Any = None,
    adapt_mapping: Callable[[Mapping], Mapping] | None = None,
) -> InsightsService | None:
    """For the lifespan: the worker's mapping and tokens when this process has them, else its own
    (as `adapt_mapping` adapts it: the development sandbox's seeded products); None, with the
    reason logged, when GHL is not configured in a way that can work (the pages then say so)."""
    from wizesync.config import ConfigError
    from wizesync.mapping import MappingError, load_mapping

    try:
        if services is not None:
            return build_insights(
                settings, sessionmaker, http, services.mapping, tokens=services.tokens
            )
        mapping = load_mapping(settings.mapping_file, default_location=settings.ghl_location_id)
        if adapt_mapping is not None:
            mapping = adapt_mapping(mapping)
        return build_insights(settings, sessionmaker, http, mapping)
    except (ConfigError, MappingError) as exc:
        log.warning("revenue insights unavailable: %s", exc)
        return None
