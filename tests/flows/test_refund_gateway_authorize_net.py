"""Refunds through Authorize.net (a GHL white-label provider; the sandbox's fake JSON API):
settled payments are refunded, unsettled ones voided (whole amount only)."""

from __future__ import annotations

import pytest

from tests.flows.conftest import FlowKit
from tests.flows.gateway_scenarios import GatewayScenarios, assert_patches_follow_the_contract
from tests.flows.support_refunds import (
    refresh,
    refund_body,
    request_refund,
    stored_refund,
    wizehire_refund,
)
from wizesync.inbox.context import RetryLater


class TestAuthorizeNet(GatewayScenarios):
    gateway = "authorize_net"
    provider = "authorize-net"
    prefix = "/authorize_net/"

    async def test_unsettled_payment_is_voided_for_a_full_refund(self, flow: FlowKit) -> None:
        order = await self.order(flow, "wh_ord_void")
        charge = flow.transactions(order.ghl_order_id)[0]["chargeId"]
        await flow.control.post(f"/_sandbox/gateways/authorize_net/unsettled/{charge}")

        await flow.process(
            await request_refund(
                flow, refund_body(order.wizehire_order_id, "149.00", refund_id="wh_ref_void")
            )
        )

        [made] = self.at_gateway(flow)
        assert made.action == "void" and made.charge_id == charge
        seen = wizehire_refund(flow, "wh_ref_void")
        assert seen is not None and seen["status"] == "succeeded"
        assert seen["gateway"] == "authorize_net" and seen["gateway_refund_id"] == charge
        stored = await stored_refund(flow, "wh_ref_void")
        assert stored is not None and stored.gateway_action == "void"
        assert (await refresh(flow, order)).payment_status == "refunded"

    async def test_partial_refund_of_an_unsettled_payment_fails_saying_why(
        self, flow: FlowKit
    ) -> None:
        order = await self.order(flow, "wh_ord_unsettled")
        charge = flow.transactions(order.ghl_order_id)[0]["chargeId"]
        await flow.control.post(f"/_sandbox/gateways/authorize_net/unsettled/{charge}")

        await flow.process(
            await request_refund(
                flow, refund_body(order.wizehire_order_id, "20.00", refund_id="wh_ref_unsettled")
            )
        )

        assert self.at_gateway(flow) == []
        seen = wizehire_refund(flow, "wh_ref_unsettled")
        assert seen is not None and seen["status"] == "failed"
        assert "has not settled" in seen["failure_reason"]
        assert "only the whole payment can be voided" in seen["failure_reason"]
        assert_patches_follow_the_contract(flow, "wh_ref_unsettled")

    async def test_refund_sends_the_cards_last_four_and_the_original_transaction(
        self, flow: FlowKit
    ) -> None:
        order = await self.order(flow, "wh_ord_card")
        charge = flow.transactions(order.ghl_order_id)[0]["chargeId"]

        await flow.process(
            await request_refund(
                flow, refund_body(order.wizehire_order_id, "5.00", refund_id="wh_ref_card")
            )
        )

        creates = [
            body["createTransactionRequest"]["transactionRequest"]
            for method, path, body in flow.transport.sent  # type: ignore[union-attr]
            if path.startswith("/authorize_net/") and "createTransactionRequest" in body
        ]
        assert creates == [
            {
                "transactionType": "refundTransaction",
                "amount": "5.00",
                "payment": {"creditCard": {"cardNumber": "1111", "expirationDate": "XXXX"}},
                "refTransId": charge,
                "order": {
                    "invoiceNumber": creates[0]["order"]["invoiceNumber"],
                    "description": "Wizehire refund wh_ref_card",
                },
            }
        ]
        assert len(creates[0]["order"]["invoiceNumber"]) <= 20

    async def test_a_retry_after_settlement_finds_the_refund_in_the_settled_batch(
        self, flow: FlowKit
    ) -> None:
        order = await self.order(flow, "wh_ord_batch")
        await self.control(flow, "authorize_net/lose-answer", {"mode": "error"})
        inbox_id = await request_refund(
            flow, refund_body(order.wizehire_order_id, "33.00", refund_id="wh_ref_batch")
        )
        with pytest.raises(RetryLater, match="looks for it at authorize_net"):
            await flow.invoke(inbox_id, attempt=1)
        await self.control(flow, "authorize_net/settle", {})  # the night passes

        [event] = await flow.process(inbox_id)

        assert event.status == "done", event.last_error
        [made] = self.at_gateway(flow)
        assert made.meta["batchId"]
        seen = wizehire_refund(flow, "wh_ref_batch")
        assert seen is not None and seen["status"] == "succeeded"
        assert seen["gateway_refund_id"] == made.id
