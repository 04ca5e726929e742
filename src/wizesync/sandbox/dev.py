"""Development with no GHL credentials: the service runs against the built-in sandbox.

With `WIZESYNC_ENV=development`, neither GHL_CLIENT_ID nor GHL_PRIVATE_TOKEN set and GHL_API_URL
left at GHL's own, nothing could talk to GHL at all. So `make run` then starts the sandbox inside
the service process: served at `/sandbox` for the operator (control plane, docs), the service's
GHL client (and its Wizehire client, when Wizehire is not configured either) routed to it
in-process, a location seeded in Private Integration Token mode with the products the sample
orders use, the built-in mapping pointing the sample SKUs at them, and the sandbox's webhooks
delivered to the service itself. `wizesync trigger order.created` then makes a real sync.

It says so in a WARNING at start. Production never does this: `plan()` is None outside
development, `DevSandbox.start()` refuses production settings, and the internal host names
contain "sandbox", which the production guard refuses in any URL.
"""

from __future__ import annotations

import logging
import os
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr
from starlette.types import Receive, Scope, Send

from wizesync.config import DEV_WIZEHIRE_API_URL, ConfigError, Settings
from wizesync.sandbox.defaults import (
    BOOST_PRICE_ID,
    BOOST_PRODUCT_ID,
    DEFAULT_LOCATION_ID,
    DEFAULT_PRIVATE_TOKEN,
    PLAN_PRICE_ID,
    PLAN_PRODUCT_ID,
    SANDBOX_APP_ID,
    SANDBOX_GATEWAY_ENV,
    SANDBOX_GATEWAYS,
    gateway_urls,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from wizesync.flows.services import Services
    from wizesync.mapping import Mapping

log = logging.getLogger(__name__)

MOUNT_PATH = "/sandbox"
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


@dataclass(frozen=True)
class DevSandboxPlan:
    wizehire: bool  # Wizehire is unconfigured too: its calls go to the sandbox's fake


def plan(settings: Settings) -> DevSandboxPlan | None:
    """Whether this process runs against the built-in sandbox, and for what; None = never."""
    if settings.wizesync_env != "development":
        return None
    if settings.ghl_client_id or settings.ghl_private_token is not None:
        return None
    if settings.ghl_api_url != Settings.model_fields["ghl_api_url"].default:
        return None  # pointed somewhere on purpose (e.g. a `wizesync sandbox` process)
    unconfigured_wizehire = (
        settings.wizehire_api_url == DEV_WIZEHIRE_API_URL
        and settings.wizehire_api_key is None
        and not (
            settings.wizehire_token_url
            or settings.wizehire_client_id
            or settings.wizehire_client_secret
        )
    )
    return DevSandboxPlan(wizehire=unconfigured_wizehire)


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
        from wizesync.sandbox.server import create_sandbox_app
        from wizesync.sandbox.settings import SandboxConfig

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

    def adopt(self, services: Services) -> None:
        """The built-in mapping routes the sample SKUs to the seeded prices; a MAPPING_FILE
        (the operator's own) is left alone."""
        if not self.settings.mapping_file:
            services.mapping = sandbox_mapping(services.mapping)
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
