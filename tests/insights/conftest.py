"""Insights tests: the service app (lifespan running, on both databases) whose revenue source
reads an in-process sandbox GHL with two locations, and the sandbox's control plane.

`insights_kit` is the fixture: `.client` talks to the service (no credentials: add them),
`.control` to the sandbox, `.sb` is the sandbox itself (its raw data for independent sums),
`.mapping` the mapping the service uses, `.token` the admin token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import _lifespan, make_settings
from tests.insights.seed import SECOND_LOCATION_ID, Planted, plant
from wizesync.app import create_app
from wizesync.ghl.client import GhlClient
from wizesync.ghl.limits import InMemoryRateLimiter, StaticTokenProvider
from wizesync.insights.routes import get_insights
from wizesync.insights.service import InsightsService
from wizesync.insights.source import GhlRevenueSource
from wizesync.mapping import Locations, Mapping, Product
from wizesync_sandbox.core import Sandbox
from wizesync_sandbox.defaults import DEFAULT_LOCATION_ID, DEFAULT_PRIVATE_TOKEN
from wizesync_sandbox.server import create_sandbox_app
from wizesync_sandbox.settings import SandboxConfig

ADMIN_TOKEN = "insights-test-admin-token-0123456789"


async def _no_sleep(_: float) -> None:
    return None


@dataclass
class InsightsKit:
    app: FastAPI
    client: httpx.AsyncClient
    control: httpx.AsyncClient
    sb: Sandbox
    sessionmaker: async_sessionmaker[AsyncSession]
    planted: Planted | None
    mapping: Mapping
    service: InsightsService
    token: str = ADMIN_TOKEN

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def ghl(self) -> dict[str, Any]:
        """The sandbox's raw GHL data (every location)."""
        return self.sb.store.dump()


def mapping_for(planted: Planted) -> Mapping:
    return Mapping(
        locations=Locations(
            default=DEFAULT_LOCATION_ID,
            accounts={"acct_b": SECOND_LOCATION_ID}
            if SECOND_LOCATION_ID in planted.locations
            else {},
        ),
        products={sku: Product(**ids) for sku, ids in planted.skus.items()},
    )


@pytest.fixture
async def insights_kit(
    database_url: str, engine: Any, sessionmaker: Any, request: pytest.FixtureRequest
) -> AsyncIterator[InsightsKit]:
    plant_data = not request.node.get_closest_marker("empty_sandbox")
    sandbox_app = create_sandbox_app(
        SandboxConfig(service_url=None, webhooks="off", ghl_rate_limit_max=10_000), seed=True
    )
    sb: Sandbox = sandbox_app.state.sandbox
    async with (
        _lifespan(sandbox_app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=sandbox_app), base_url="http://sandbox"
        ) as control,
    ):
        planted = await plant(control) if plant_data else Planted()
        mapping = mapping_for(planted)
        ghl = GhlClient(
            control,
            base_url="http://sandbox/ghl",
            version="2021-07-28",
            tokens=StaticTokenProvider(DEFAULT_PRIVATE_TOKEN),
            limiter=InMemoryRateLimiter(sleep=_no_sleep),
            sleep=_no_sleep,
        )
        settings = make_settings(database_url, admin_token=ADMIN_TOKEN, worker="off")
        app = create_app(settings)
        async with _lifespan(app):
            service = InsightsService(
                GhlRevenueSource(ghl, mapping, cache_seconds=60), app.state.wizesync.sessionmaker
            )
            app.dependency_overrides[get_insights] = lambda: service
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://test"
            ) as client:
                yield InsightsKit(
                    app=app,
                    client=client,
                    control=control,
                    sb=sb,
                    sessionmaker=sessionmaker,
                    planted=planted,
                    mapping=mapping,
                    service=service,
                )
