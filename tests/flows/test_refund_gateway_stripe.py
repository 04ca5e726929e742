"""Refunds through Stripe (the sandbox's fake Stripe, the official `stripe` client)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.flows.conftest import FlowKit
from tests.flows.gateway_scenarios import (
    GATEWAY_SETTINGS,
    GatewayScenarios,
    gateway_mapping,
    set_gateway_env,
)
from tests.flows.support_refunds import (
    refund_body,
    request_refund,
    stored_refund,
    wizehire_refund,
)
from wizesync.mapping import Mapping


class TestStripe(GatewayScenarios):
    gateway = "stripe"
    provider = "stripe"
    prefix = "/stripe/"

    async def test_idempotency_key_and_metadata_are_the_wizehire_ids(self, flow: FlowKit) -> None:
        order = await self.order(flow, "wh_ord_meta")

        await flow.process(
            await request_refund(
                flow,
                refund_body(
                    order.wizehire_order_id,
                    "12.34",
                    refund_id="wh_ref_meta",
                    reason_code="duplicate",
                ),
            )
        )

        [made] = self.at_gateway(flow)
        assert made.meta["metadata"] == {
            "wizehire_order_id": "wh_ord_meta",
            "wizehire_refund_id": "wh_ref_meta",
        }
        assert made.meta["reason"] == "duplicate"
        assert flow.sb.gateways.idempotency.keys() == {"stripe:wh_ref_meta"}
        assert str(made.amount) == "12.34"
        assert wizehire_refund(flow, "wh_ref_meta")["status"] == "succeeded"  # type: ignore[index]


class TestStripeForced:
    """`executor: stripe` forces Stripe (no look at GHL's provider type needed to pick it)."""

    @pytest.fixture
    def flow_mapping(self) -> Mapping:
        return gateway_mapping("stripe")

    @pytest.fixture
    def flow_settings_overrides(self) -> dict[str, Any]:
        return dict(GATEWAY_SETTINGS)

    @pytest.fixture(autouse=True)
    def gateway_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        set_gateway_env(monkeypatch)

    async def test_forced_stripe_refunds_there(self, flow: FlowKit) -> None:
        await TestStripe().test_partial_refund_moves_the_money_and_wizehire_hears_succeeded(flow)
        stored = await stored_refund(flow, "wh_ref_part")
        assert stored is not None and stored.executor == "stripe"
