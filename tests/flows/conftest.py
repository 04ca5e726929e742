"""Flow tests, end to end in-process: the real handlers and Worker, the real GHL and Wizehire
clients, talking HTTP (httpx ASGITransport) to the sandbox's fake GHL and fake Wizehire.

`flow` (a `FlowKit`) is the one fixture a test needs: it holds the sandbox (seeded location,
product and price), a `Services` wired to it, a Slack recorder, ways to deliver events through the
real ingest path, to run them (one handler call, or a real Worker to completion), and to read both
fakes' recorded state. Tunables are fixtures a test module can override: `sandbox_config`,
`flow_mapping`, `flow_settings_overrides`, `flow_limiter`.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import make_settings
from tests.support.waiting import eventually
from tests.support.worker_harness import load
from wizesync import samples
from wizesync.config import Settings
from wizesync.db import sync_repo
from wizesync.db.inbox_repo import ClaimedEvent
from wizesync.db.models import EventStatus, InboxEvent
from wizesync.db.sync_models import SyncOrder
from wizesync.flows.services import Services
from wizesync.ghl.client import GhlClient
from wizesync.ghl.limits import InMemoryRateLimiter, RateLimiter, StaticTokenProvider
from wizesync.inbox import ingest
from wizesync.inbox.classify import classify_ghl, classify_wizehire
from wizesync.inbox.context import EventContext
from wizesync.inbox.registry import HandlerRegistry, load_handlers
from wizesync.inbox.worker import Worker
from wizesync.mapping import Fulfillment, Locations, Mapping, Orders, Product
from wizesync.notify.slack import SlackNotifier
from wizesync.wizehire.auth import ApiKeyAuth
from wizesync.wizehire.client import WizehireClient
from wizesync_sandbox.core import Sandbox
from wizesync_sandbox.defaults import (
    BOOST_PRICE_ID,
    BOOST_PRODUCT_ID,
    DEFAULT_LOCATION_ID,
    DEFAULT_PRIVATE_TOKEN,
    PLAN_PRICE_ID,
    PLAN_PRODUCT_ID,
)
from wizesync_sandbox.faults import FaultRule
from wizesync_sandbox.server import create_sandbox_app
from wizesync_sandbox.settings import SandboxConfig

SANDBOX_HOST = "sandbox"
GHL_BASE_URL = f"http://{SANDBOX_HOST}/ghl"
WIZEHIRE_BASE_URL = f"http://{SANDBOX_HOST}/wizehire"
WIZEHIRE_API_KEY = "sandbox-wizehire-api-key"
SLACK_URL = "http://slack.test/services/hook"
LOCATION_ID = DEFAULT_LOCATION_ID
SAMPLE_SKU = "JOB-BOOST-30"
PLAN_SKU = "HIRING-PLAN-MONTHLY"
TRACKING_URL = "https://app.wizehire.com/orders/{order_id}"


class SlackRecorder:
    """Stands in for Slack's incoming webhook: keeps every message's text."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.messages.append(json.loads(request.content).get("text", ""))
        return httpx.Response(200, text="ok")

    def matching(self, text: str) -> list[str]:
        return [m for m in self.messages if text in m]


class RoutingTransport(httpx.AsyncBaseTransport):
    """One outbound client for the service: the sandbox host goes to the sandbox app in-process,
    Slack's host to the recorder; anything else is a test bug (no real network)."""

    def __init__(self, routes: dict[str, httpx.AsyncBaseTransport]) -> None:
        self.routes = routes
        # Every request the service sent: (method, path, JSON body or None), oldest first.
        self.sent: list[tuple[str, str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self.routes.get(request.url.host)
        if transport is None:
            raise httpx.ConnectError(
                f"no route to {request.url.host} in flow tests", request=request
            )
        raw = await request.aread()
        self.sent.append((request.method, request.url.path, _body_of(raw)))
        # ASGITransport ignores timeouts; a real network would not: enforce the read timeout.
        read = (request.extensions.get("timeout") or {}).get("read")
        try:
            return await asyncio.wait_for(transport.handle_async_request(request), read)
        except TimeoutError:
            raise httpx.ReadTimeout("read timed out (flow tests)", request=request) from None


def _body_of(raw: bytes) -> Any:
    """JSON bodies parsed; others (a gateway's form posts) kept as text."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


async def fast_sleep(seconds: float) -> None:
    """Client backoff in tests: real but short, so retries are exercised without long waits."""
    await asyncio.sleep(min(seconds, 0.02))


def default_mapping(**orders: Any) -> Mapping:
    """The sample SKU (and the monthly plan) mapped to the seeded sandbox price/product."""
    return Mapping(
        locations=Locations(default=LOCATION_ID),
        products={
            SAMPLE_SKU: Product(price_id=BOOST_PRICE_ID, product_id=BOOST_PRODUCT_ID),
            PLAN_SKU: Product(price_id=PLAN_PRICE_ID, product_id=PLAN_PRODUCT_ID),
        },
        orders=Orders(**orders),
        fulfillment=Fulfillment(
            notify_customer=True, carrier="Wizehire", tracking_url=TRACKING_URL
        ),
    )


def build_flow_services(
    settings: Settings,
    http: httpx.AsyncClient,
    mapping: Mapping,
    *,
    limiter: RateLimiter | None = None,
    sleep: Callable[[float], Any] = fast_sleep,
    ghl_timeout: httpx.Timeout | None = None,
) -> Services:
    """A `Services` like `build_services` makes, but on the routed client and a PIT token."""
    # No location pinned: the sandbox accepts the token for every PIT location it seeds.
    tokens = StaticTokenProvider(DEFAULT_PRIVATE_TOKEN)
    # The configured budget, as the service's shared limiter has it (a test that narrows GHL's
    # window must not wait out the default 10 s one).
    limiter = limiter or InMemoryRateLimiter(
        settings.ghl_rate_limit_max, settings.ghl_rate_limit_window_seconds, sleep=sleep
    )
    ghl = GhlClient(
        http,
        base_url=GHL_BASE_URL,
        version=settings.ghl_api_version,
        tokens=tokens,
        limiter=limiter,
        sleep=sleep,
        **({"timeout": ghl_timeout} if ghl_timeout else {}),
    )
    wizehire = WizehireClient(
        http, base_url=WIZEHIRE_BASE_URL, auth=ApiKeyAuth(WIZEHIRE_API_KEY), sleep=sleep
    )
    return Services(
        settings=settings,
        ghl=ghl,
        tokens=tokens,
        limiter=limiter,
        mapping=mapping,
        slack=SlackNotifier(http, SLACK_URL, min_interval=0.0),
        wizehire_client=wizehire,
        http=http,
    )


@dataclass
class FlowKit:
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    sb: Sandbox
    sandbox_app: FastAPI
    http: httpx.AsyncClient  # the service's outbound client (sandbox + Slack)
    control: httpx.AsyncClient  # the sandbox's control plane, base_url http://sandbox
    services: Services
    slack: SlackRecorder
    registry: HandlerRegistry
    location_id: str = LOCATION_ID
    transport: RoutingTransport | None = None
    workers: list[Worker] = field(default_factory=list)

    # --- events in ---------------------------------------------------------------------------
    def order(self, order_id: str | None = None, **overrides: Any) -> dict[str, Any]:
        """A contract-shaped Wizehire order (the sample) with overrides."""
        order = samples.wizehire_order(order_id or f"wh_ord_{uuid.uuid4().hex[:10]}")
        order.update(overrides)
        return order

    async def deliver(
        self,
        event_type: str,
        body: dict[str, Any],
        *,
        source: str = "wizehire",
        event_id: str | None = None,
    ) -> int:
        """Store an event through the real ingest path (as the webhook route does after the
        signature check); returns its inbox id (the existing one for a duplicate)."""
        raw = json.dumps(body).encode()
        classified = classify_wizehire(raw) if source == "wizehire" else classify_ghl(raw)[0]
        assert classified.type == event_type, classified
        assert classified.status == EventStatus.QUEUED, classified.errors
        stored = await ingest.store(
            self.sessionmaker,
            source=source,
            event_id=event_id or f"evt_{uuid.uuid4().hex}",
            raw_body=raw,
            classified=classified,
        )
        return stored.id

    async def deliver_order(
        self,
        event_type: str,
        order: dict[str, Any],
        *,
        event_id: str | None = None,
        timestamp: str | None = None,
    ) -> int:
        body = {"type": event_type, "timestamp": timestamp or now_iso(), "data": {"order": order}}
        return await self.deliver(event_type, body, event_id=event_id)

    # --- running -----------------------------------------------------------------------------
    def context(
        self,
        *,
        attempt: int = 1,
        source: str = "test",
        event_type: str = "test",
        payload: Any = None,
    ) -> EventContext:
        """An EventContext outside any stored event, for calling flow functions directly."""
        event = ClaimedEvent(
            id=0,
            source=source,
            event_id=f"ctx_{uuid.uuid4().hex}",
            type=event_type,
            ordering_key=None,
            attempt=attempt,
            payload=payload or {},
            received_at=datetime.now(UTC),
        )
        return EventContext(
            event=event,
            settings=self.settings,
            sessionmaker=self.sessionmaker,
            services=self.services,
        )

    async def invoke(self, inbox_id: int, *, attempt: int = 1) -> None:
        """Run the event's handler once, directly (no lease, no outcome recorded): exceptions
        (RetryLater, PermanentFailure, injected crashes) reach the test."""
        row = await load(self.sessionmaker, inbox_id)
        handler = self.registry.get(row.source, row.type)
        assert handler is not None, f"no handler for {row.source} {row.type}"
        event = ClaimedEvent(
            id=row.id,
            source=row.source,
            event_id=row.event_id,
            type=row.type,
            ordering_key=row.ordering_key,
            attempt=attempt,
            payload=row.payload,
            received_at=row.received_at,
        )
        ctx = EventContext(
            event=event,
            settings=self.settings,
            sessionmaker=self.sessionmaker,
            services=self.services,
        )
        await handler(ctx)

    def worker(self) -> Worker:
        worker = Worker(
            settings=self.settings,
            sessionmaker=self.sessionmaker,
            registry=self.registry,
            services=self.services,
        )
        self.workers.append(worker)
        return worker

    @asynccontextmanager
    async def running_worker(self) -> AsyncIterator[Worker]:
        worker = self.worker()
        worker.start()
        try:
            yield worker
        finally:
            await worker.stop(grace_seconds=10)

    async def wait_finished(self, *inbox_ids: int, timeout: float = 60.0) -> list[InboxEvent]:
        """Until every event is done or dead (poll, generous deadline)."""

        async def check() -> list[InboxEvent] | None:
            rows = [await load(self.sessionmaker, i) for i in inbox_ids]
            final = (EventStatus.DONE.value, EventStatus.DEAD.value)
            return rows if all(r.status in final for r in rows) else None

        return await eventually(check, what=f"events {inbox_ids} to finish", timeout=timeout)

    async def process(self, *inbox_ids: int, timeout: float = 60.0) -> list[InboxEvent]:
        """Run a real Worker until these events are done or dead, and the Slack notices they
        queued have been posted."""
        async with self.running_worker():
            finished = await self.wait_finished(*inbox_ids, timeout=timeout)
            await self.wait_notices_sent(timeout=timeout)
            return finished

    async def send_notices(self, timeout: float = 60.0) -> None:
        """Post the queued Slack notices (internal `slack.notify` events) with a real Worker:
        for tests that call flows directly instead of through `process`."""
        async with self.running_worker():
            await self.wait_notices_sent(timeout=timeout)

    async def wait_notices_sent(self, timeout: float = 60.0) -> None:
        async def check() -> bool:
            async with self.sessionmaker() as session:
                pending = (
                    await session.execute(
                        select(func.count())
                        .select_from(InboxEvent)
                        .where(
                            InboxEvent.source == "internal",
                            InboxEvent.type == "slack.notify",
                            InboxEvent.status.not_in(
                                [EventStatus.DONE.value, EventStatus.DEAD.value]
                            ),
                        )
                    )
                ).scalar_one()
            return pending == 0

        await eventually(check, what="the queued Slack notices to be posted", timeout=timeout)

    # --- the sync record ---------------------------------------------------------------------
    async def sync_order(self, wizehire_order_id: str) -> SyncOrder | None:
        async with self.sessionmaker() as session:
            return await sync_repo.get_by_wizehire_id(session, wizehire_order_id)

    # --- faults ------------------------------------------------------------------------------
    def fault(self, **rule: Any) -> FaultRule:
        """e.g. `fault(path="/ghl/payments/orders/*/fulfillments", method="POST", status=500,
        phase="after", times=1)`."""
        return self.sb.faults.add(FaultRule(**rule))

    def clear_faults(self) -> None:
        self.sb.faults.rules.clear()

    # --- fake GHL state ----------------------------------------------------------------------
    def ghl(self) -> dict[str, Any]:
        return self.sb.store.dump(self.location_id)

    def ghl_requests(self, method: str, path_glob: str) -> list[Any]:
        """JSON bodies the service sent to the fake GHL, e.g. `("POST", "*/fulfillments")`
        (path globbed without the `/ghl` prefix)."""
        assert self.transport is not None
        return [
            body
            for verb, path, body in self.transport.sent
            if verb == method
            and path.startswith("/ghl/")
            and fnmatch.fnmatchcase(path.removeprefix("/ghl"), path_glob)
        ]

    def contacts(self) -> list[dict[str, Any]]:
        return [c for c in self.sb.store.contacts.values() if c["locationId"] == self.location_id]

    def invoices(self, wizehire_order_id: str | None = None) -> list[dict[str, Any]]:
        docs = [i for i in self.sb.store.invoices.values() if i["altId"] == self.location_id]
        if wizehire_order_id is not None:
            docs = [i for i in docs if wizehire_order_id in i.get("name", "")]
        return docs

    def orders(self) -> list[dict[str, Any]]:
        return [o for o in self.sb.store.orders.values() if o["altId"] == self.location_id]

    def fulfillments(self, ghl_order_id: str) -> list[dict[str, Any]]:
        return list(self.sb.store.fulfillments.get(ghl_order_id, []))

    def transactions(self, entity_id: str | None = None) -> list[dict[str, Any]]:
        return [
            t
            for t in self.sb.store.transactions.values()
            if entity_id is None or t.get("entityId") == entity_id
        ]

    # --- fake Wizehire state -----------------------------------------------------------------
    def wizehire_calls(
        self, *, method: str | None = None, path: str | None = None
    ) -> list[dict[str, Any]]:
        """Every call the fake Wizehire received (method, path, headers, body, answer)."""
        return self.sb.wizehire.find_calls(method=method, path=path)

    def order_syncs(self, wizehire_order_id: str) -> list[dict[str, Any]]:
        """The PATCH /v1/orders/{id}/sync calls for this order, oldest first."""
        return self.wizehire_calls(method="PATCH", path=f"/v1/orders/{wizehire_order_id}/sync")

    def wizehire_order(self, wizehire_order_id: str) -> dict[str, Any] | None:
        return self.sb.wizehire.orders.get(wizehire_order_id)


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """Webhooks off by default (these tests drive events themselves); a seeded fault RNG."""
    return SandboxConfig(service_url=None, webhooks="off", fault_seed=1234)


@pytest.fixture
def flow_mapping() -> Mapping:
    return default_mapping()


@pytest.fixture
def flow_settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def flow_limiter() -> RateLimiter | None:
    """None: an InMemoryRateLimiter; override to use e.g. a DbRateLimiter."""
    return None


@pytest.fixture
def flow_ghl_timeout() -> httpx.Timeout | None:
    """None: the production GHL timeouts; override to exercise timeouts quickly."""
    return None


@pytest.fixture
async def flow(
    database_url: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    sandbox_config: SandboxConfig,
    flow_mapping: Mapping,
    flow_settings_overrides: dict[str, Any],
    flow_limiter: RateLimiter | None,
    flow_ghl_timeout: httpx.Timeout | None,
) -> AsyncIterator[FlowKit]:
    values: dict[str, Any] = {
        "wizehire_api_url": WIZEHIRE_BASE_URL,
        "wizehire_api_key": WIZEHIRE_API_KEY,
        "ghl_api_url": GHL_BASE_URL,
        "slack_webhook_url": SLACK_URL,
        "worker_max_attempts": 8,
    }
    settings = make_settings(database_url, **{**values, **flow_settings_overrides})
    slack = SlackRecorder()
    async with AsyncExitStack() as stack:
        sb = Sandbox.build(sandbox_config)
        app = create_sandbox_app(sandbox=sb, seed=True)
        transport = RoutingTransport(
            {
                SANDBOX_HOST: httpx.ASGITransport(app=app),
                "slack.test": httpx.MockTransport(slack.handle),
            }
        )
        http = await stack.enter_async_context(httpx.AsyncClient(transport=transport))
        sb.outbox.http = http
        await stack.enter_async_context(app.router.lifespan_context(app))
        control = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=f"http://{SANDBOX_HOST}"
            )
        )
        services = build_flow_services(
            settings, http, flow_mapping, limiter=flow_limiter, ghl_timeout=flow_ghl_timeout
        )
        kit = FlowKit(
            settings=settings,
            sessionmaker=sessionmaker,
            sb=sb,
            sandbox_app=app,
            http=http,
            control=control,
            services=services,
            slack=slack,
            registry=load_handlers([]),
            transport=transport,
        )
        try:
            yield kit
        finally:
            for worker in kit.workers:
                if worker._main is not None and not worker._main.done():
                    await worker.stop(grace_seconds=5)
