"""`wizesync dev`: the service composed with the sandbox, for development with no GHL credentials.

With `WIZESYNC_ENV=development`, neither GHL_CLIENT_ID nor GHL_PRIVATE_TOKEN set and GHL_API_URL
left at GHL's own (`wizesync.devmode.plan`), nothing could talk to GHL at all. So `wizesync dev`
(what `make run` runs) serves `create_dev_app()`: the service's own `create_app()`, with the
sandbox started inside its lifespan as the stand-in for GHL (`wizesync.app.StandIn`). It is served
at `/sandbox` for the operator (control plane, docs), the service's GHL client (and its Wizehire
client, when Wizehire is not configured either) routed to it in-process, a location seeded in
Private Integration Token mode with the products the sample orders use, the built-in mapping
pointing the sample SKUs at them, and the sandbox's webhooks delivered to the service itself.
`wizesync trigger order.created` then makes a real sync. With GHL configured, `wizesync dev` is
`wizesync serve`.

It says so in a WARNING at start. Production never does this: the service never asks its stand-in
in production, `DevSandbox.start()` refuses production settings, the internal host names contain
"sandbox", which the production guard refuses in any URL, and the production image does not hold
this package at all.
"""

from __future__ import annotations

import logging
import os
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr
from starlette.types import Receive, Scope, Send

from wizesync.app import WizesyncApp, create_app
from wizesync.config import ConfigError, Settings
from wizesync.devmode import (
    DEFAULT_LOCATION_ID,
    DEFAULT_PRIVATE_TOKEN,
    MOUNT_PATH,
    SANDBOX_APP_ID,
    SANDBOX_GHL_PUBLIC_KEY_PEM,
    DevSandboxPlan,
    plan,
)
from wizesync_sandbox.defaults import (
    BOOST_PRICE_ID,
    BOOST_PRODUCT_ID,
    PLAN_PRICE_ID,
    PLAN_PRODUCT_ID,
    SANDBOX_GATEWAY_ENV,
    SANDBOX_GATEWAYS,
    gateway_urls,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from wizesync.flows.services import Services
    from wizesync.inbox.registry import HandlerRegistry
    from wizesync.mapping import Mapping

log = logging.getLogger(__name__)

# In-process only: `.invalid` never resolves, so nothing can leak onto the network if routing
# were ever missing, and "sandbox" in the host trips the production guard.
SANDBOX_BASE = "http://wizesync-sandbox.invalid"
SERVICE_BASE = "http://wizesync-service.invalid"
SANDBOX_WIZEHIRE_KEY = "sandbox-wizehire-api-key"  # the fake Wizehire accepts any bearer
# The sample orders' SKUs (`wizesync trigger`, samples.py) -> the seeded products.
SANDBOX_PRODUCTS = {
    "JOB-BOOST-30": {"price_id": BOOST_PRICE_ID, "product_id": BOOST_PRODUCT_ID},
    "HIRING-PLAN-MONTHLY": {"price_id": PLAN_PRICE_ID, "product_id": PLAN_PRODUCT_ID},
}


def create_dev_app(
    settings: Settings | None = None, *, registry: HandlerRegistry | None = None
) -> WizesyncApp:
    """`create_app()` with the sandbox standing in for GHL whenever `plan()` says so."""
    mount = SandboxMount()  # answers only while the sandbox runs in this process

    async def stand_in(conf: Settings, service_app: FastAPI) -> DevSandbox | None:
        return await DevSandbox.start(conf, service_app, mount)

    app = create_app(settings, registry=registry, stand_in=stand_in)
    app.mount(MOUNT_PATH, mount)
    return app


def sandbox_settings(settings: Settings, the_plan: DevSandboxPlan) -> Settings:
    """The settings the service runs with: GHL (and maybe Wizehire) are the sandbox."""
    update: dict[str, Any] = {
        "ghl_api_url": f"{SANDBOX_BASE}/ghl",
        "ghl_authorize_url": f"{SANDBOX_BASE}/ghl/oauth/chooselocation",
        "ghl_private_token": SecretStr(DEFAULT_PRIVATE_TOKEN),
        "ghl_location_id": DEFAULT_LOCATION_ID,
    }
    # The sandbox's own install events name its app; a configured GHL_APP_ID stays.
    if not settings.ghl_app_id:
        update["ghl_app_id"] = SANDBOX_APP_ID
    # Refunds move money at the sandbox's fake gateways, unless pointed elsewhere on purpose.
    defaults = {
        name: Settings.model_fields[name].default
        for name in ("stripe_api_base", "nmi_api_url", "authnet_api_url")
    }
    for name, url in zip(defaults, gateway_urls(SANDBOX_BASE).values(), strict=True):
        if getattr(settings, name) == defaults[name]:
            update[name] = url
    if the_plan.wizehire:
        update |= {
            "wizehire_api_url": f"{SANDBOX_BASE}/wizehire",
            "wizehire_api_key": SecretStr(SANDBOX_WIZEHIRE_KEY),
        }
    return settings.model_copy(update=update)


def sandbox_mapping(mapping: Mapping) -> Mapping:
    """The built-in mapping plus the seeded products for the sample SKUs (no MAPPING_FILE)."""
    from wizesync.mapping import Locations, Product

    products = {sku: Product(**ids) for sku, ids in SANDBOX_PRODUCTS.items()}
    refunds = mapping.refunds
    if not refunds.gateways:  # the fake gateways, credentials named like any others
        refunds = refunds.model_copy(update={"gateways": SANDBOX_GATEWAYS})
    return mapping.model_copy(
        update={
            "products": {**products, **mapping.products},
            "locations": Locations(
                default=mapping.locations.default or DEFAULT_LOCATION_ID,
                accounts=mapping.locations.accounts,
            ),
            "refunds": refunds,
        }
    )


class SandboxMount:
    """The ASGI app at `/sandbox`: the sandbox while it runs in this process, else 404."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is not None:
            await self.app(scope, receive, send)
            return
        from wizesync.problems import Problem

        response = Problem(
            404,
            "Not Found",
            "the built-in sandbox runs only in development with no GHL credentials configured",
        ).response()
        await response(scope, receive, send)


class DevSandbox:
    """The stand-in `create_app()`'s lifespan runs with (`wizesync.app.StandIn`)."""

    # Its webhooks are signed with the sandbox's key, trusted beside GHL's while it runs here.
    ghl_keys: tuple[str, ...] = (SANDBOX_GHL_PUBLIC_KEY_PEM,)

    def __init__(
        self, the_plan: DevSandboxPlan, settings: Settings, app: Any, stack: AsyncExitStack
    ) -> None:
        self.plan = the_plan
        self.settings = settings  # what the service runs with
        self.app = app  # the sandbox's ASGI app (app.state.sandbox: its state)
        self._stack = stack

    @classmethod
    async def start(
        cls, settings: Settings, service_app: FastAPI, mount: SandboxMount | None = None
    ) -> DevSandbox | None:
        """None unless `plan(settings)` says so."""
        if settings.is_production:
            raise ConfigError(
                "the built-in sandbox is for development only; production "
                "needs GHL credentials (GHL_CLIENT_ID or GHL_PRIVATE_TOKEN)"
            )
        the_plan = plan(settings)
        if the_plan is None:
            return None
        from wizesync_sandbox.server import create_sandbox_app
        from wizesync_sandbox.settings import SandboxConfig

        effective = sandbox_settings(settings, the_plan)
        stack = AsyncExitStack()
        # Its webhooks go straight into this very service (in-process, signed as usual).
        to_service = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=service_app, raise_app_exceptions=False),
                base_url=SERVICE_BASE,
            )
        )
        config = SandboxConfig(
            service_url=SERVICE_BASE,
            webhooks="send",
            wizehire_secret=effective.wizehire_webhook_secrets[0],
        )
        app = create_sandbox_app(config, http=to_service, seed=True)
        await stack.enter_async_context(app.router.lifespan_context(app))
        if mount is not None:
            mount.app = app
            stack.callback(setattr, mount, "app", None)
        dev = cls(the_plan, effective, app, stack)
        dev._announce(settings)
        return dev

    @property
    def mounts(self) -> dict[str, httpx.AsyncBaseTransport]:
        """For the service's HTTP client: the sandbox's host answered in-process."""
        return {SANDBOX_BASE: httpx.ASGITransport(app=self.app)}

    def adapt_mapping(self, mapping: Mapping) -> Mapping:
        """The built-in mapping routes the sample SKUs to the seeded prices; a MAPPING_FILE
        (the operator's own) is left alone."""
        return mapping if self.settings.mapping_file else sandbox_mapping(mapping)

    def adopt(self, services: Services) -> None:
        """The worker's services use the adapted mapping (see `adapt_mapping`)."""
        services.mapping = self.adapt_mapping(services.mapping)
        if not self.settings.mapping_file:
            # The variables the sandbox mapping names (development only: values are public).
            for name, value in SANDBOX_GATEWAY_ENV.items():
                os.environ.setdefault(name, value)

    async def close(self) -> None:
        await self._stack.aclose()

    def _announce(self, given: Settings) -> None:
        wizehire = (
            f"Wizehire is the sandbox's fake at {MOUNT_PATH}/wizehire"
            if self.plan.wizehire
            else f"Wizehire is the configured API ({given.wizehire_api_url})"
        )
        log.warning(
            f"DEVELOPMENT: GHL and Wizehire are the built-in sandbox at {MOUNT_PATH} on this "
            f"service (no GHL credentials are configured). GHL is {MOUNT_PATH}/ghl, location "
            f"{DEFAULT_LOCATION_ID} (PIT mode); {wizehire}; control plane "
            f"{MOUNT_PATH}/_sandbox/state, docs {MOUNT_PATH}/docs. Nothing reaches the real GHL. "
            "Set GHL_PRIVATE_TOKEN + GHL_LOCATION_ID or GHL_CLIENT_ID to use a real GHL.",
            extra={
                "sandbox": MOUNT_PATH,
                "ghl_location_id": DEFAULT_LOCATION_ID,
                "wizehire_sandbox": self.plan.wizehire,
            },
        )
        if given.ghl_location_id and given.ghl_location_id != DEFAULT_LOCATION_ID:
            log.warning(
                "GHL_LOCATION_ID is ignored without a token; the sandbox location is used",
                extra={"ghl_location_id": given.ghl_location_id},
            )
        if given.worker == "off":
            log.warning(
                "WORKER=off: a separate `wizesync worker` cannot reach this process's "
                "sandbox; run with WORKER=inprocess, or start `wizesync sandbox` and "
                "point both at it (it prints the settings)"
            )
