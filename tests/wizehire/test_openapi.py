"""The service's OpenAPI documents the Wizehire API it calls (under `webhooks`), from the very
models the client sends, so the document and the wire cannot drift apart."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import make_settings
from wizesync.app import create_app

SYNC_FIELDS = {
    "ghl_location_id",
    "ghl_order_id",
    "ghl_invoice_id",
    "ghl_fulfillment_id",
    "payment_status",
    "amount_paid",
    "amount_refunded",
    "currency",
    "ghl_transaction_ids",
    "subscription",
    "synced_at",
}
REFUND_FIELDS = {
    "status",
    "amount",
    "currency",
    "ghl_transaction_id",
    "failure_reason",
    "processed_at",
    "gateway",
    "gateway_refund_id",
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(make_settings("sqlite+aiosqlite:///:memory:")).openapi()


def _schema(spec: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    return spec["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]


def _body(spec: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any]:
    return _schema(spec, operation["requestBody"]["content"]["application/json"]["schema"])


def test_the_three_wizehire_operations_are_documented_with_bearer_auth(spec: dict) -> None:
    hooks = spec["webhooks"]
    assert set(hooks) >= {"/v1/orders/{order_id}/sync", "/v1/refunds/{refund_id}", "/v1/orders"}
    operations = [
        hooks["/v1/orders/{order_id}/sync"]["patch"],
        hooks["/v1/refunds/{refund_id}"]["patch"],
        hooks["/v1/orders"]["get"],
    ]
    for operation in operations:
        assert operation["security"] == [{"WizehireBearer": []}]
    assert spec["components"]["securitySchemes"]["WizehireBearer"]["scheme"] == "bearer"
    # None of them is a route of the service itself.
    assert not any(path.startswith("/v1/") for path in spec["paths"])


@pytest.mark.parametrize("path", ["/v1/orders/{order_id}/sync", "/v1/refunds/{refund_id}"])
def test_every_write_requires_an_idempotency_key(spec: dict, path: str) -> None:
    params = {p["name"]: p for p in spec["webhooks"][path]["patch"]["parameters"]}
    assert params["Idempotency-Key"]["in"] == "header"
    assert params["Idempotency-Key"]["required"] is True


def test_order_sync_body_is_the_contracts(spec: dict) -> None:
    body = _body(spec, spec["webhooks"]["/v1/orders/{order_id}/sync"]["patch"])
    assert set(body["properties"]) == SYNC_FIELDS
    assert body["properties"]["payment_status"]["enum"] == [
        "pending",
        "paid",
        "partially_refunded",
        "refunded",
        "failed",
        "cancelled",
    ]
    assert body["properties"]["amount_paid"]["type"] == "string"
    assert body["properties"]["synced_at"]["format"] == "date-time"
    sub = _schema(spec, body["properties"]["subscription"]["anyOf"][0])
    assert set(sub["properties"]) == {
        "ghl_subscription_id",
        "status",
        "next_charge_at",
        "canceled_at",
    }


def test_refund_update_body_is_the_contracts(spec: dict) -> None:
    body = _body(spec, spec["webhooks"]["/v1/refunds/{refund_id}"]["patch"])
    assert set(body["properties"]) == REFUND_FIELDS
    assert body["properties"]["status"]["enum"] == [
        "pending",
        "manual_action_required",
        "succeeded",
        "failed",
    ]


def test_orders_page_is_documented_with_its_query(spec: dict) -> None:
    operation = spec["webhooks"]["/v1/orders"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"updated_since", "cursor", "limit"}
    page = _schema(spec, operation["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(page["properties"]) == {"data", "next_cursor"}
    order = _schema(spec, page["properties"]["data"]["items"])
    assert {"id", "status", "currency", "amount", "items", "customer"} <= set(order["properties"])
