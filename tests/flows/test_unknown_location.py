"""A GHL webhook for a location this service has no install for is not a re-authorisation problem:
the event ends at once (dead, replayable) with what it is in words, instead of waiting 30 minutes
for a human to re-authorise an install that does not exist."""

from __future__ import annotations

from tests.flows.conftest import GHL_BASE_URL, LOCATION_ID, FlowKit
from tests.flows.support_payments import deliver_ghl
from wizesync import samples
from wizesync.db.models import EventStatus
from wizesync.ghl.client import GhlClient
from wizesync.ghl.limits import StaticTokenProvider
from wizesync_sandbox.defaults import BOOST_PRICE_ID, DEFAULT_PRIVATE_TOKEN

OTHER_LOCATION = "Z4Bxl8J4SaPEPLq9IQ8g"  # GHL's official example's location


def pin_token_to_the_sandbox_location(flow: FlowKit) -> None:
    """Private Integration Token mode as `make run` has it: one token, one location."""
    tokens = StaticTokenProvider(DEFAULT_PRIVATE_TOKEN, LOCATION_ID)
    flow.services.tokens = tokens
    flow.services.ghl = GhlClient(
        flow.http,
        base_url=GHL_BASE_URL,
        version=flow.settings.ghl_api_version,
        tokens=tokens,
        limiter=flow.services.limiter,
    )


async def test_order_webhook_for_a_location_without_install_dies_at_once_in_words(
    flow: FlowKit,
) -> None:
    pin_token_to_the_sandbox_location(flow)
    body = samples.ghl_event("OrderCreate", location_id=OTHER_LOCATION)
    (event,) = await flow.process(await deliver_ghl(flow, body))
    assert event.status == EventStatus.DEAD
    assert event.attempts == 1
    error = event.last_error or ""
    assert f"no GHL install for location {OTHER_LOCATION}" in error
    assert f"is for location {LOCATION_ID} only" in error
    assert "Not retried" in error
    assert "re-authoris" not in error


async def test_the_same_webhook_for_the_served_location_is_done(flow: FlowKit) -> None:
    pin_token_to_the_sandbox_location(flow)
    bought = await flow.control.post(
        "/_sandbox/ghl/checkout",
        json={"location_id": LOCATION_ID, "items": [{"price_id": BOOST_PRICE_ID, "qty": 1}]},
    )
    assert bought.status_code == 201, bought.text
    order = bought.json()["order"]
    body = samples.ghl_event("OrderCreate", order["_id"], location_id=LOCATION_ID)
    (event,) = await flow.process(await deliver_ghl(flow, body))
    assert event.status == EventStatus.DONE, event.last_error
