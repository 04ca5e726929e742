"""Refunds through NMI (a GHL white-label provider; the sandbox's fake Direct Post and Query
APIs)."""

from __future__ import annotations

from tests.flows.conftest import FlowKit
from tests.flows.gateway_scenarios import GatewayScenarios
from tests.flows.support_refunds import refund_body, request_refund, wizehire_refund


class TestNmi(GatewayScenarios):
    gateway = "nmi"
    provider = "nmi"
    prefix = "/nmi/"

    async def test_refund_is_tagged_with_the_wizehire_refund_id_for_the_look_up(
        self, flow: FlowKit
    ) -> None:
        order = await self.order(flow, "wh_ord_nmi_tag")

        await flow.process(
            await request_refund(
                flow, refund_body(order.wizehire_order_id, "10.00", refund_id="wh_ref_nmi_tag")
            )
        )

        [made] = self.at_gateway(flow)
        assert made.tag == "wh_ref_nmi_tag" and made.charge_id.isdigit()
        assert wizehire_refund(flow, "wh_ref_nmi_tag")["gateway"] == "nmi"  # type: ignore[index]
        sent = [
            body
            for method, path, body in flow.transport.sent  # type: ignore[union-attr]
            if path == "/nmi/api/transact.php"
        ]
        assert len(sent) == 1 and "type=refund" in sent[0] and "amount=10.00" in sent[0]
