"""The spec checker itself: it must reject what GHL would, and skip cleanly without the files."""

from __future__ import annotations

import jsonschema
import pytest

from tests.support import ghl_kit as kit
from tests.support import ghl_spec

FULFILL = "/payments/orders/{orderId}/fulfillments"


def _fulfillment_body(**over):
    return {
        "altId": kit.LOC,
        "altType": "location",
        "trackings": [],
        "items": [{"priceId": kit.PRICE_ID, "qty": 1}],
        "notifyCustomer": False,
        **over,
    }


def test_request_check_accepts_the_documented_body_and_refuses_a_misspelt_key() -> None:
    ghl_spec.require_spec_dir()
    ghl_spec.validate_request_body("payments.json", "POST", FULFILL, _fulfillment_body())
    with pytest.raises(jsonschema.ValidationError):
        ghl_spec.validate_request_body(
            "payments.json", "POST", FULFILL, _fulfillment_body(notifyCustomers=True)
        )
    with pytest.raises(jsonschema.ValidationError):
        ghl_spec.validate_request_body(
            "payments.json", "POST", FULFILL, _fulfillment_body(altType="company")
        )


def test_response_check_allows_extra_fields_but_not_wrong_types() -> None:
    ghl_spec.require_spec_dir()
    path = "/payments/transactions/{transactionId}"
    assert ghl_spec.validate_response(
        "payments.json", "GET", path, 200, kit.transaction(somethingNew=1)
    )
    with pytest.raises(jsonschema.ValidationError):
        ghl_spec.validate_response(
            "payments.json", "GET", path, 200, kit.transaction(amount="150.10")
        )


def test_response_check_resolves_refs_into_the_common_schemas() -> None:
    ghl_spec.require_spec_dir()
    error = {"statusCode": 422, "message": ["name should not be empty"], "error": "x"}
    assert ghl_spec.validate_response("invoices.json", "POST", "/invoices/", 422, error)
    with pytest.raises(jsonschema.ValidationError):
        ghl_spec.validate_response(
            "invoices.json", "POST", "/invoices/", 422, {**error, "message": "not a list"}
        )


def test_unknown_path_fails_rather_than_passing_silently() -> None:
    ghl_spec.require_spec_dir()
    with pytest.raises(AssertionError, match="has no POST /payments/orders"):
        ghl_spec.operation("payments.json", "POST", "/payments/orders")  # no create-order call
    with pytest.raises(AssertionError, match="has no path /payments/refunds"):
        ghl_spec.operation("payments.json", "POST", "/payments/refunds")  # no refund call


def test_errata_table_still_matches_the_spec() -> None:
    folder = ghl_spec.require_spec_dir()
    ghl_spec._loaded.cache_clear()
    ghl_spec._loaded(str(folder), strict=False)  # asserts every erratum hits a node


def test_checks_skip_cleanly_when_the_spec_is_absent(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("GHL_OPENAPI_DIR", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    assert ghl_spec.spec_dir() is None
    with pytest.raises(pytest.skip.Exception):
        ghl_spec.validate_request_body("payments.json", "POST", FULFILL, {})


def test_a_missing_spec_fails_in_ci_instead_of_skipping(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("GHL_OPENAPI_DIR", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        ghl_spec.validate_request_body("payments.json", "POST", FULFILL, {})
