"""The demo data `wizesync sandbox` starts with (unless `--empty`): one location in PIT mode (any
bearer token works for it), a one-time product matching the contract's sample SKU and a monthly
plan. Fixed ids, so a mapping file and `.env` can name them (the location, its token and the app
id are in `wizesync.devmode`: the samples name them too)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wizesync.devmode import (
    DEFAULT_LOCATION_ID,
    DEFAULT_PRIVATE_TOKEN,
    SANDBOX_GHL_PUBLIC_KEY_PEM,
)

if TYPE_CHECKING:
    from wizesync_sandbox.core import Sandbox

DEFAULT_PORT = 8010
DEFAULT_COMPANY_ID = "SandboxAgency0000001"
BOOST_PRODUCT_ID = "65a1b2c3d4e5f60000000001"
BOOST_PRICE_ID = "65a1b2c3d4e5f60000000002"
PLAN_PRODUCT_ID = "65a1b2c3d4e5f60000000003"
PLAN_PRICE_ID = "65a1b2c3d4e5f60000000004"
# The fake gateways accept any credentials; a development service names these variables in its
# mapping (`refunds.gateways.default`), with these readable values.
SANDBOX_GATEWAY_ENV = {
    "WIZESYNC_SANDBOX_STRIPE_KEY": "sk_test_wizesync_sandbox",
    "WIZESYNC_SANDBOX_NMI_KEY": "wizesync-sandbox-nmi-key",
    "WIZESYNC_SANDBOX_AUTHNET_LOGIN": "wizesync-sandbox-login",
    "WIZESYNC_SANDBOX_AUTHNET_KEY": "wizesync-sandbox-transaction-key",
}
SANDBOX_GATEWAYS = {
    "default": {
        "stripe": {"api_key_env": "WIZESYNC_SANDBOX_STRIPE_KEY"},
        "nmi": {"security_key_env": "WIZESYNC_SANDBOX_NMI_KEY"},
        "authorize_net": {
            "login_id_env": "WIZESYNC_SANDBOX_AUTHNET_LOGIN",
            "transaction_key_env": "WIZESYNC_SANDBOX_AUTHNET_KEY",
        },
    }
}


def seed_defaults(sb: Sandbox) -> dict[str, Any]:
    """Idempotent: what exists already is left alone."""
    store = sb.store
    if DEFAULT_LOCATION_ID not in store.locations:
        store.add_location(
            id=DEFAULT_LOCATION_ID,
            name="Sandbox Plumbing Co.",
            company_id=DEFAULT_COMPANY_ID,
            pit=True,
        )
    if BOOST_PRODUCT_ID not in store.products:
        store.add_product(
            DEFAULT_LOCATION_ID,
            id=BOOST_PRODUCT_ID,
            name="Job ad boost, 30 days",
            description="Wizehire JOB-BOOST-30",
        )
        store.add_price(BOOST_PRODUCT_ID, id=BOOST_PRICE_ID, name="One-time", amount="149.00")
    if PLAN_PRODUCT_ID not in store.products:
        store.add_product(DEFAULT_LOCATION_ID, id=PLAN_PRODUCT_ID, name="Hiring plan")
        store.add_price(
            PLAN_PRODUCT_ID,
            id=PLAN_PRICE_ID,
            name="Monthly",
            amount="99.00",
            type="recurring",
            interval="month",
        )
    return {
        "location_id": DEFAULT_LOCATION_ID,
        "company_id": DEFAULT_COMPANY_ID,
        "private_token": DEFAULT_PRIVATE_TOKEN,
        "products": {
            "JOB-BOOST-30": {"product_id": BOOST_PRODUCT_ID, "price_id": BOOST_PRICE_ID},
            "HIRING-PLAN-MONTHLY": {"product_id": PLAN_PRODUCT_ID, "price_id": PLAN_PRICE_ID},
        },
    }


def service_env(base_url: str) -> dict[str, str]:
    """What a development service needs to talk to this sandbox (printed at start)."""
    base = base_url.rstrip("/")
    return {
        "GHL_API_URL": f"{base}/ghl",
        "GHL_AUTHORIZE_URL": f"{base}/ghl/oauth/chooselocation",
        "GHL_PRIVATE_TOKEN": DEFAULT_PRIVATE_TOKEN,
        "GHL_LOCATION_ID": DEFAULT_LOCATION_ID,
        "WIZEHIRE_API_URL": f"{base}/wizehire",
        "WIZEHIRE_API_KEY": "sandbox-wizehire-api-key",
        **gateway_urls(base),
        **SANDBOX_GATEWAY_ENV,
        # Its webhooks are signed with the sandbox's (public) key: a service outside the
        # in-process sandbox trusts it only when configured (never in production).
        "GHL_WEBHOOK_PUBLIC_KEY": SANDBOX_GHL_PUBLIC_KEY_PEM,
    }


def gateway_urls(base_url: str) -> dict[str, str]:
    """The refund gateways' settings pointing at the sandbox's fakes."""
    base = base_url.rstrip("/")
    return {
        "STRIPE_API_BASE": f"{base}/stripe",
        "NMI_API_URL": f"{base}/nmi/api/transact.php",
        "AUTHNET_API_URL": f"{base}/authorize_net/xml/v1/request.api",
    }
