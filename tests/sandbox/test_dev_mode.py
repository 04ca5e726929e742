"""`make run` (`wizesync dev`) with no GHL credentials: in development the service runs against
the built-in sandbox (in its own process, at /sandbox) and says so loudly; production never does,
and neither does `wizesync serve` (the product's own app knows nothing of the sandbox).

The end-to-end test is the README's two-command demo in-process: a sample `order.created` (what
`wizesync trigger order.created` sends) becomes a contact, an invoice, its payment, the order
GHL makes for it, a fulfillment, and the sync back to (fake) Wizehire.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import SecretStr

from tests.conftest import make_settings
from tests.support.ops_kit import order_event, post_wizehire
from tests.support.waiting import eventually, wait_for_status
from wizesync.config import ConfigError
from wizesync_sandbox import dev
from wizesync_sandbox.defaults import BOOST_PRICE_ID, DEFAULT_LOCATION_ID

BANNER = "DEVELOPMENT: GHL and Wizehire are the built-in sandbox at /sandbox"
PRODUCTION = {
    "wizesync_env": "production",
    "admin_token": "admin-token-for-prod-test-81c2-0123456789",
    "allow_sqlite_in_production": True,
    "wizehire_webhook_secret": "whsec_cHJvZHVjdGlvbi1zZWNyZXQtZm9yLXRlc3RzLTk5",
    "wizehire_api_url": "https://api.wizehire.example/v1",
    "wizehire_api_key": "wh-prod-key",
}


def development(database_url: str, **overrides: Any) -> Any:
    return make_settings(database_url, wizesync_env="development", **overrides)


async def test_development_without_ghl_credentials_serves_the_sandbox_and_says_so(
    database_url, engine, client_factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="wizesync_sandbox.dev")
    client = await client_factory(development(database_url), sandbox=True)
    [banner] = [r for r in caplog.records if r.getMessage().startswith(BANNER)]
    assert banner.levelno == logging.WARNING
    assert "Nothing reaches the real GHL" in banner.getMessage()

    health = await client.get("/sandbox/health")
    assert health.status_code == 200 and health.json()["locations"] == 1
    state = (await client.get("/sandbox/_sandbox/state")).json()
    assert [loc["id"] for loc in state["ghl"]["locations"]] == [DEFAULT_LOCATION_ID]
    assert BOOST_PRICE_ID in [p["_id"] for p in state["ghl"]["prices"]]
    # The service's own view: one location in PIT mode, read through its GHL client.
    [entry] = (await client.get("/sync-status")).json()["installations"]
    assert (entry["location_id"], entry["auth_mode"]) == (DEFAULT_LOCATION_ID, "pit")
    assert entry["whitelabel_provider"]["status"] == "known"
    assert "sandbox-private-integration-token" not in str(entry)


async def test_a_sample_order_syncs_end_to_end_through_the_built_in_sandbox(
    database_url, engine, client_factory
) -> None:
    client = await client_factory(development(database_url), sandbox=True)
    event = order_event("order.created")
    order = event["data"]["order"]
    assert [i["sku"] for i in order["items"]] == ["JOB-BOOST-30"]
    response = await post_wizehire(client, event)  # signed with the development secret
    assert response.status_code == 202, response.text
    await wait_for_status(client, response.json()["id"], "done")

    ghl = (
        await client.get("/sandbox/_sandbox/state", params={"location_id": DEFAULT_LOCATION_ID})
    ).json()["ghl"]
    [invoice] = ghl["invoices"]
    assert [i["priceId"] for i in invoice["invoiceItems"]] == [BOOST_PRICE_ID]
    [ghl_order] = ghl["orders"]
    assert (ghl_order["source"]["type"], ghl_order["source"]["id"]) == ("invoice", invoice["_id"])
    assert len(ghl["fulfillments"][ghl_order["_id"]]) == 1
    synced = (await client.get("/sandbox/_sandbox/wizehire/orders")).json()["data"]
    [wizehire_order] = [o for o in synced if o["id"] == order["id"]]
    assert wizehire_order["ghl_sync"]["payment_status"] == "paid"
    assert wizehire_order["ghl_sync"]["ghl_order_id"] == ghl_order["_id"]

    # The sandbox's own webhooks (InvoicePaid, OrderCreate, ...) reached this very service.
    async def delivered() -> bool:
        rows = (await client.get("/sandbox/_sandbox/webhooks", params={"source": "ghl"})).json()[
            "data"
        ]
        return bool(rows) and all(r["status"] == "delivered" for r in rows)

    await eventually(delivered)
    received = (await client.get("/admin/events", params={"source": "ghl"})).json()["data"]
    assert {"InvoicePaid", "OrderCreate"} <= {row["type"] for row in received}


async def test_production_settings_never_start_the_sandbox(
    database_url, engine, client_factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    settings = make_settings(database_url, worker="off", **PRODUCTION)
    assert dev.plan(settings) is None
    client = await client_factory(settings, sandbox=True)
    missing = await client.get("/sandbox/health")
    assert missing.status_code == 404
    assert "only in development" in missing.json()["detail"]
    assert not [r for r in caplog.records if BANNER in r.getMessage()]
    with pytest.raises(ConfigError, match="development only"):
        await dev.DevSandbox.start(settings, object())  # type: ignore[arg-type]


async def test_the_products_own_app_never_starts_the_sandbox(
    database_url, engine, client_factory, caplog: pytest.LogCaptureFixture
) -> None:
    """`wizesync serve`: the same settings as `make run`, and no sandbox."""
    caplog.set_level(logging.WARNING)
    client = await client_factory(development(database_url, worker="off"))
    assert (await client.get("/sandbox/health")).status_code == 404
    assert not [r for r in caplog.records if BANNER in r.getMessage()]


def test_the_sandbox_is_only_for_development_with_nothing_configured(database_url) -> None:
    assert dev.plan(development(database_url)) == dev.DevSandboxPlan(wizehire=True)
    assert dev.plan(make_settings(database_url)) is None  # WIZESYNC_ENV=test
    assert (
        dev.plan(development(database_url, ghl_private_token="pit", ghl_location_id="L1")) is None
    )
    assert dev.plan(development(database_url, ghl_client_id="app")) is None
    assert dev.plan(development(database_url, ghl_api_url="http://127.0.0.1:8010/ghl")) is None
    # Wizehire configured: kept, only GHL is the sandbox.
    own = development(database_url, wizehire_api_url="https://wh.example/api", wizehire_api_key="k")
    the_plan = dev.plan(own)
    assert the_plan == dev.DevSandboxPlan(wizehire=False)
    effective = dev.sandbox_settings(own, the_plan)
    assert effective.wizehire_api_url == "https://wh.example/api"
    assert effective.ghl_api_url.startswith(dev.SANDBOX_BASE)


def test_the_production_guard_refuses_the_sandbox_settings(database_url) -> None:
    effective = dev.sandbox_settings(development(database_url), dev.DevSandboxPlan(True))
    with pytest.raises(ValueError) as refused:  # pydantic wraps the guard's ConfigError
        make_settings(
            database_url,
            **PRODUCTION,
            ghl_api_url=effective.ghl_api_url,
            ghl_private_token=SecretStr("pit"),
            ghl_location_id=DEFAULT_LOCATION_ID,
        )
    assert "GHL_API_URL points at a sandbox" in str(refused.value)
