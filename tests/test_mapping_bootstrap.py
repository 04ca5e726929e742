"""From a GHL location to a mapping known to work: the shipped example, `wizesync ghl catalog`,
`wizesync mapping init` and `wizesync mapping check --online`, against a `wizesync sandbox`
process (the commands talk HTTP to it exactly as they would to GHL)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from tests.support.sandbox_proc import running_sandbox
from tests.test_try_it import SERVICE_VARIABLES
from wizesync.cli import app
from wizesync.ghl.catalog import CatalogLine
from wizesync.mapping import Mapping, load_mapping
from wizesync.mapping_template import mapped_prices, render_example
from wizesync_sandbox.defaults import (
    BOOST_PRICE_ID,
    BOOST_PRODUCT_ID,
    DEFAULT_LOCATION_ID,
    DEFAULT_PRIVATE_TOKEN,
    PLAN_PRICE_ID,
    PLAN_PRODUCT_ID,
)

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "mapping.example.yaml"


# --- the shipped example -------------------------------------------------------------------------


def test_the_example_is_what_the_renderer_writes_and_loads() -> None:
    assert EXAMPLE.read_text() == render_example(), (
        "regenerate: python -c 'from wizesync.mapping_template import render_example; "
        'open("mapping.example.yaml", "w").write(render_example())\''
    )
    mapping = load_mapping(str(EXAMPLE))
    assert mapping.locations.default == "<GHL location id>"
    assert set(mapping.products) == {"JOB-BOOST-30", "HIRING-PLAN-MONTHLY"}


def _keys(model: type[Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for name, field in model.model_fields.items():
        out.add(prefix + name)
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            out |= _keys(annotation, f"{prefix}{name}.")
    return out


def test_the_example_names_every_key_of_the_mapping_with_a_comment() -> None:
    text = EXAMPLE.read_text()
    data = yaml.safe_load(text)
    present = {
        f"{section}.{key}"
        for section, body in data.items()
        if isinstance(body, dict)
        for key in body
    } | set(data)
    product_keys = {f"products.{k}" for k in next(iter(data["products"].values()))}
    expected = _keys(Mapping) | {"products.price_id", "products.product_id", "products.currency"}
    # accounts is an empty mapping in the example; its shape is shown in a comment.
    assert expected - {"locations.accounts"} <= present | product_keys | {"locations.accounts"}
    assert "#   acct_42:" in text
    for section in data:
        index = text.index(f"\n{section}:")
        assert text[:index].rstrip().splitlines()[-1].startswith("#"), section


def test_the_examples_commented_refund_gateways_are_the_contracts_shape() -> None:
    lines = EXAMPLE.read_text().split("\nrefunds:\n", 1)[1].splitlines()
    uncommented = [
        line.replace("  # ", "  ", 1)
        for line in lines
        if not line.lstrip().startswith("# ") or ":" in line.split("#", 1)[1][:40]
    ]
    block = "\n".join(
        line
        for line in uncommented
        if line.strip() and "executor: manual" not in line and not line.strip().startswith("#")
    )
    refunds = yaml.safe_load("refunds:\n" + block)["refunds"]
    assert refunds["executor"] == "auto"
    gateways = refunds["gateways"]
    assert gateways["default"] == {"stripe": {"api_key_env": "STRIPE_API_KEY"}}
    per_location = gateways["<GHL location id>"]
    assert per_location["nmi"] == {"security_key_env": "NMI_SECURITY_KEY_LOC1"}
    assert per_location["authorize_net"] == {
        "login_id_env": "AUTHNET_LOGIN_ID",
        "transaction_key_env": "AUTHNET_TRANSACTION_KEY",
    }


def test_skus_are_unique_and_say_the_price_when_a_product_has_several() -> None:
    lines = [
        CatalogLine("p1", "Hiring plan", "a", "Monthly", Decimal("99"), "USD", None),
        CatalogLine("p1", "Hiring plan", "b", "Yearly", Decimal("999"), "USD", None),
        CatalogLine("p2", "Boost!", "c", "One", Decimal("5"), "USD", None),
        CatalogLine("p3", "Boost?", "d", "One", Decimal("5"), "USD", None),
        CatalogLine("p4", "No price", None, "", None, None, None),
    ]
    assert [m.sku for m in mapped_prices(lines)] == [
        "HIRING-PLAN-MONTHLY",
        "HIRING-PLAN-YEARLY",
        "BOOST",
        "BOOST-2",
    ]


# --- against a running sandbox -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_sandbox(tmp_path_factory.mktemp("sandbox")) as url:
        euro = httpx.post(
            f"{url}/_sandbox/ghl/products",
            json={
                "location_id": DEFAULT_LOCATION_ID,
                "name": "Premium listing",
                "prices": [{"name": "Once", "amount": "49.00", "currency": "EUR"}],
            },
            timeout=10,
        )
        assert euro.status_code == 201, euro.text
        yield url


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sandbox_url: str) -> dict[str, str]:
    """The CLI configured for the sandbox in PIT mode, a migrated SQLite, a clean cwd."""
    for name in list(os.environ):
        if SERVICE_VARIABLES.match(name):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    values = {
        "COLUMNS": "250",
        "WIZESYNC_ENV": "development",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/w.db",
        "GHL_API_URL": f"{sandbox_url}/ghl",
        "GHL_PRIVATE_TOKEN": DEFAULT_PRIVATE_TOKEN,
        "GHL_LOCATION_ID": DEFAULT_LOCATION_ID,
    }
    assert run(values, "migrate").exit_code == 0
    return values


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def words(result: Result) -> str:
    return " ".join((result.stdout + " " + result.stderr).split())


@pytest.mark.slow
def test_catalog_lists_the_locations_products_and_prices(env: dict[str, str]) -> None:
    result = run(env, "ghl", "catalog", "--location", DEFAULT_LOCATION_ID)
    assert result.exit_code == 0, words(result)
    rows = [line for line in result.stdout.splitlines() if "│" in line]
    boost = next(r for r in rows if BOOST_PRICE_ID in r)
    assert BOOST_PRODUCT_ID in boost and "149.00" in boost and "USD" in boost
    plan = next(r for r in rows if PLAN_PRICE_ID in r)
    assert PLAN_PRODUCT_ID in plan and "99.00" in plan and "every 1 month" in plan
    assert any("Premium listing" in r and "49.00" in r and "EUR" in r for r in rows)


@pytest.mark.slow
def test_catalog_of_a_location_without_access_says_so(env: dict[str, str]) -> None:
    result = run(env, "ghl", "catalog", "--location", "Z4Bxl8J4SaPEPLq9IQ8g")
    assert result.exit_code == 1
    assert "no GHL install for location Z4Bxl8J4SaPEPLq9IQ8g" in words(result)
    assert "Traceback" not in words(result)


@pytest.mark.slow
def test_init_writes_a_mapping_that_checks_online_and_never_overwrites_unasked(
    env: dict[str, str], tmp_path: Path
) -> None:
    result = run(env, "mapping", "init", "--location", DEFAULT_LOCATION_ID)
    assert result.exit_code == 0, words(result)
    written = tmp_path / "mapping.yaml"
    mapping = load_mapping(str(written))
    assert mapping.locations.default == DEFAULT_LOCATION_ID
    by_price = {p.price_id: p for p in mapping.products.values()}
    assert by_price[BOOST_PRICE_ID].product_id == BOOST_PRODUCT_ID
    assert by_price[BOOST_PRICE_ID].currency == "USD"
    assert by_price[PLAN_PRICE_ID].product_id == PLAN_PRODUCT_ID
    assert "JOB-AD-BOOST-30-DAYS" in mapping.products
    assert "# Job ad boost, 30 days / One-time: 149.00 USD" in written.read_text()

    checked = run(env, "mapping", "check", str(written), "--online")
    assert checked.exit_code == 0, words(checked)
    assert "every mapped price exists in GHL (3 checked)" in words(checked)

    before = written.read_text()
    written.write_text(before + "# my edits\n")
    again = run(env, "mapping", "init", "--location", DEFAULT_LOCATION_ID)
    assert again.exit_code == 1
    assert "mapping.yaml exists already; pass --force to overwrite it" in words(again)
    assert written.read_text().endswith("# my edits\n")
    forced = run(env, "mapping", "init", "--location", DEFAULT_LOCATION_ID, "--force")
    assert forced.exit_code == 0, words(forced)
    assert written.read_text() == before


@pytest.mark.slow
def test_online_check_names_each_price_ghl_does_not_hold(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "wrong.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "locations": {"default": DEFAULT_LOCATION_ID},
                "products": {
                    "JOB-BOOST-30": {
                        "price_id": BOOST_PRICE_ID,
                        "product_id": BOOST_PRODUCT_ID,
                        "currency": "USD",
                    },
                    "WRONG-PRICE": {
                        "price_id": "65a1b2c3d4e5f600000000ff",
                        "product_id": BOOST_PRODUCT_ID,
                    },
                    "WRONG-PRODUCT": {
                        "price_id": BOOST_PRICE_ID,
                        "product_id": "65a1b2c3d4e5f600000000fe",
                    },
                    "PLAN-UNDER-BOOST": {"price_id": PLAN_PRICE_ID, "product_id": BOOST_PRODUCT_ID},
                    "IN-EUROS": {
                        "price_id": BOOST_PRICE_ID,
                        "product_id": BOOST_PRODUCT_ID,
                        "currency": "EUR",
                    },
                },
            }
        )
    )
    result = run(env, "mapping", "check", str(path), "--online")
    assert result.exit_code == 1
    text = words(result)
    assert (
        f"WRONG-PRICE in location {DEFAULT_LOCATION_ID}: price 65a1b2c3d4e5f600000000ff "
        f"is not a price of product {BOOST_PRODUCT_ID}"
    ) in text
    assert "WRONG-PRODUCT in location" in text
    assert "product 65a1b2c3d4e5f600000000fe does not exist" in text
    assert f"PLAN-UNDER-BOOST in location {DEFAULT_LOCATION_ID}: price {PLAN_PRICE_ID}" in text
    assert (
        f"IN-EUROS in location {DEFAULT_LOCATION_ID}: price {BOOST_PRICE_ID} is in USD, "
        "the mapping says EUR" in text
    )
    assert "JOB-BOOST-30 in location" not in text


@pytest.mark.slow
def test_online_check_covers_every_location_orders_are_routed_to(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "locations": {
                    "default": DEFAULT_LOCATION_ID,
                    "accounts": {"acct_9": "Z4Bxl8J4SaPEPLq9IQ8g"},
                },
                "products": {
                    "JOB-BOOST-30": {"price_id": BOOST_PRICE_ID, "product_id": BOOST_PRODUCT_ID}
                },
            }
        )
    )
    result = run(env, "mapping", "check", str(path), "--online")
    assert result.exit_code == 1
    text = words(result)
    assert "JOB-BOOST-30 in location Z4Bxl8J4SaPEPLq9IQ8g" in text
    assert "no GHL install for location Z4Bxl8J4SaPEPLq9IQ8g" in text


def test_check_names_an_executor_this_build_does_not_have(tmp_path) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("refunds: {executor: paypal}\n")
    result = run(
        {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/w.db"}, "mapping", "check", str(mapping)
    )
    assert result.exit_code == 1
    assert "unknown refund executor 'paypal'" in words(result)
    assert "stripe" in words(result)  # the known names, gateway plug-ins included


def test_check_lists_the_gateway_executors(tmp_path) -> None:
    result = run(
        {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/w.db"}, "mapping", "check", str(EXAMPLE)
    )
    assert result.exit_code == 0, words(result)
    assert "authorize_net, auto, manual, nmi, stripe" in words(result)
