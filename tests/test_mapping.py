"""The mapping file: contract shape accepted, every mistake named by its field."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from wizesync.cli import app
from wizesync.mapping import MappingError, load_mapping

CONTRACT_EXAMPLE = """
locations: {default: "loc_default_0001", accounts: {acct_42: "loc_acct42_0001"}}
products: {JOB-BOOST-30: {price_id: "price_1", product_id: "prod_1"}}
orders: {strategy: match_or_invoice, match_window_minutes: 30}
fulfillment: {notify_customer: false, carrier: "Wizehire",
              tracking_url: "https://app.wizehire.com/orders/{order_id}"}
payment_status: {succeeded: paid, failed: failed, refunded: refunded}
refunds: {executor: manual}
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mapping.yaml"
    path.write_text(text)
    return str(path)


def test_contract_example_resolves_routes_and_products(tmp_path):
    mapping = load_mapping(write(tmp_path, CONTRACT_EXAMPLE))
    assert mapping.location_for("acct_42") == "loc_acct42_0001"
    assert mapping.location_for("acct_other") == "loc_default_0001"
    assert mapping.location_for("acct_42", explicit="loc_explicit") == "loc_explicit"
    assert mapping.products["JOB-BOOST-30"].price_id == "price_1"
    assert mapping.fulfillment.tracking_url_for("wh_ord_1") == (
        "https://app.wizehire.com/orders/wh_ord_1"
    )


def test_no_file_gives_defaults_routed_to_the_configured_location():
    mapping = load_mapping(None, default_location="loc_pit")
    assert mapping.orders.strategy == "match_or_invoice"
    assert mapping.location_for("acct_any") == "loc_pit"
    assert mapping.payment_status["succeeded"] == "paid"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("products: {SKU-1: {product_id: p}}", "products.SKU-1.price_id"),
        ("orders: {strategy: guess}", "orders.strategy"),
        ("orders: {match_window_minutes: 0}", "orders.match_window_minutes"),
        ("fulfillment: {tracking_url: 'https://x/{account}'}", "fulfillment.tracking_url"),
        ("payment_status: {succeeded: done}", "payment_status.succeeded"),
        ("refunds: {executor: 'Stripe!'}", "refunds.executor"),
        ("refunds: {gateways: {default: {stripe: {api_key: sk_live_x}}}}", "refunds.gateways"),
        (
            "refunds: {gateways: {default: {stripe: {api_key_env: 'not a name'}}}}",
            "refunds.gateways.default.stripe.api_key_env",
        ),
        ("locatoins: {default: x}", "locatoins"),
    ],
)
def test_each_mistake_is_named_by_its_field(tmp_path, text, named):
    with pytest.raises(MappingError) as info:
        load_mapping(write(tmp_path, text))
    assert named in str(info.value)
    assert "mapping.yaml" in str(info.value)


def test_unreadable_or_non_yaml_files_are_said_in_words(tmp_path):
    with pytest.raises(MappingError, match="cannot read"):
        load_mapping(str(tmp_path / "missing.yaml"))
    with pytest.raises(MappingError, match="not valid YAML"):
        load_mapping(write(tmp_path, "products: [unclosed"))
    with pytest.raises(MappingError, match="top level"):
        load_mapping(write(tmp_path, "- a list"))


def test_mapping_check_command_prints_resolution_or_the_error(tmp_path, monkeypatch):
    monkeypatch.setenv("WIZESYNC_ENV", "development")
    runner = CliRunner()
    good = runner.invoke(app, ["mapping", "check", write(tmp_path, CONTRACT_EXAMPLE)])
    assert good.exit_code == 0, good.output
    assert "loc_acct42_0001" in good.output
    bad_path = tmp_path / "bad.yaml"
    bad_path.write_text("orders: {strategy: guess}")
    bad = runner.invoke(app, ["mapping", "check", str(bad_path)])
    assert bad.exit_code == 1
    assert "orders.strategy" in bad.output
