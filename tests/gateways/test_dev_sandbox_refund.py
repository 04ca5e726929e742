"""`make run` with nothing configured: a refund of a GHL checkout paid with Stripe is made at
the built-in sandbox's fake Stripe (the gateway URLs and the mapping's credentials point there),
and GHL's transaction shows it."""

from __future__ import annotations

import pytest

from tests.conftest import make_settings
from tests.support.ops_kit import order_event, post_wizehire
from tests.support.waiting import eventually, wait_for_status
from wizesync_sandbox.defaults import BOOST_PRICE_ID, DEFAULT_LOCATION_ID, SANDBOX_GATEWAY_ENV


async def test_a_checkout_paid_with_stripe_is_refunded_at_the_sandboxs_stripe(
    database_url, engine, client_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SANDBOX_GATEWAY_ENV.items():  # restored after the test
        monkeypatch.setenv(name, value)
    client = await client_factory(
        make_settings(database_url, wizesync_env="development"), sandbox=True
    )
    bought = (
        await client.post(
            "/sandbox/_sandbox/ghl/checkout",
            json={
                "location_id": DEFAULT_LOCATION_ID,
                "provider": "stripe",
                "items": [{"price_id": BOOST_PRICE_ID, "qty": 1}],
            },
        )
    ).json()
    event = order_event("order.created")
    order = event["data"]["order"]
    order.update(ghl_order_id=bought["order"]["_id"], ghl_location_id=DEFAULT_LOCATION_ID)
    response = await post_wizehire(client, event)
    await wait_for_status(client, response.json()["id"], "done")

    refund = {
        "type": "refund.requested",
        "timestamp": event["timestamp"],
        "data": {
            "refund": {
                "id": "wh_ref_dev_1",
                "order_id": order["id"],
                "amount": "49.00",
                "currency": "USD",
                "reason_code": "customer_request",
                "note": None,
            }
        },
    }
    response = await post_wizehire(client, refund)
    assert response.status_code == 202, response.text
    await wait_for_status(client, response.json()["id"], "done")

    async def told() -> dict | None:  # type: ignore[type-arg]
        refunds = (await client.get("/sandbox/_sandbox/wizehire/refunds")).json()["data"]
        return next((r for r in refunds if r["id"] == "wh_ref_dev_1"), None)

    await eventually(told)
    seen = await told()
    assert seen is not None and seen["status"] == "succeeded", seen
    made = (await client.get("/sandbox/_sandbox/gateways/refunds")).json()
    assert [(m["gateway"], m["amount"], m["id"]) for m in made] == [
        ("stripe", "49.00", seen["gateway_refund_id"])
    ]
    state = (
        await client.get("/sandbox/_sandbox/state", params={"location_id": DEFAULT_LOCATION_ID})
    ).json()
    [txn] = [t for t in state["ghl"]["transactions"] if t["_id"] == bought["transaction"]["_id"]]
    assert txn["amountRefunded"] == 49
