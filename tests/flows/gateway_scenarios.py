"""The scenarios every refund gateway must pass, end to end against the sandbox's fakes over
HTTP (the real handler, executor, gateway client and worker). A gateway's test module
subclasses `GatewayScenarios` with its name, its GHL provider type and its path prefix; adding
a gateway adds such a module (and its own extra cases) and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from tests.flows.conftest import FlowKit, default_mapping
from tests.flows.support_refunds import (
    PaidOrder,
    paid_order,
    refresh,
    refund_body,
    refund_calls,
    request_refund,
    stored_refund,
    wizehire_refund,
)
from tests.support.waiting import eventually
from wizesync.db.models import EventStatus
from wizesync.mapping import Mapping, Refunds
from wizesync.wizehire.client import idempotency_key
from wizesync_sandbox.gateways import GatewayRefundDoc
from wizesync_sandbox.wizehire_app import validate_refund

GATEWAY_ENV = {
    "WZTEST_STRIPE_KEY": "sk_test_wizesync",
    "WZTEST_NMI_KEY": "nmi-security-key",
    "WZTEST_AUTHNET_LOGIN": "authnet-login",
    "WZTEST_AUTHNET_KEY": "authnet-transaction-key",
}
GATEWAYS = {
    "default": {
        "stripe": {"api_key_env": "WZTEST_STRIPE_KEY"},
        "nmi": {"security_key_env": "WZTEST_NMI_KEY"},
        "authorize_net": {
            "login_id_env": "WZTEST_AUTHNET_LOGIN",
            "transaction_key_env": "WZTEST_AUTHNET_KEY",
        },
    }
}
GATEWAY_SETTINGS: dict[str, Any] = {
    "stripe_api_base": "http://sandbox/stripe",
    "nmi_api_url": "http://sandbox/nmi/api/transact.php",
    "authnet_api_url": "http://sandbox/authorize_net/xml/v1/request.api",
    "refund_gateway_timeout_seconds": 0.5,
    "worker_backoff_base_seconds": 0.05,
    "worker_backoff_max_seconds": 0.2,
}


def gateway_mapping(executor: str = "auto", gateways: dict[str, Any] | None = None) -> Mapping:
    return default_mapping().model_copy(
        update={
            "refunds": Refunds(
                executor=executor, gateways=GATEWAYS if gateways is None else gateways
            )
        }
    )


def set_gateway_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in GATEWAY_ENV.items():
        monkeypatch.setenv(name, value)


def assert_patches_follow_the_contract(flow: FlowKit, refund_id: str) -> list[dict[str, Any]]:
    """Every PATCH /v1/refunds/{id} body is valid, keyed by refund id + status."""
    calls = refund_calls(flow, refund_id)
    assert calls, f"Wizehire heard nothing about {refund_id}"
    for call in calls:
        body = call["body"]
        assert validate_refund(body) == [], body
        assert call["headers"]["idempotency-key"] == idempotency_key(
            "refund", refund_id, body["status"]
        )
        assert set(body) <= {
            "status",
            "amount",
            "currency",
            "ghl_transaction_id",
            "failure_reason",
            "processed_at",
            "gateway",
            "gateway_refund_id",
        }
        if body["status"] == "manual_action_required":
            assert "gateway" not in body and "gateway_refund_id" not in body
    return calls


class GatewayScenarios:
    gateway: ClassVar[str]
    provider: ClassVar[str]  # GHL's paymentProviderType for the sandbox checkout
    prefix: ClassVar[str]  # the fake gateway's path prefix

    @pytest.fixture(autouse=True)
    def gateway_env(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        set_gateway_env(monkeypatch)
        yield

    @pytest.fixture
    def flow_mapping(self) -> Mapping:
        return gateway_mapping()

    @pytest.fixture
    def flow_settings_overrides(self) -> dict[str, Any]:
        return dict(GATEWAY_SETTINGS)

    # --- helpers -------------------------------------------------------------------------------
    async def order(self, flow: FlowKit, order_id: str) -> PaidOrder:
        return await paid_order(flow, order_id, provider=self.provider)

    def at_gateway(self, flow: FlowKit) -> list[GatewayRefundDoc]:
        return flow.sb.gateways.of(self.gateway)

    def gateway_requests(self, flow: FlowKit) -> list[Any]:
        assert flow.transport is not None
        return [(m, p) for m, p, _ in flow.transport.sent if p.startswith(self.prefix)]

    def ghl_refunded(self, flow: FlowKit, order: PaidOrder) -> str:
        (txn,) = [t for t in flow.transactions(order.ghl_order_id)]
        return str(txn["amountRefunded"])

    async def control(self, flow: FlowKit, path: str, body: dict[str, Any]) -> None:
        answer = await flow.control.post(f"/_sandbox/gateways/{path}", json=body)
        assert answer.status_code in (200, 201), answer.text

    # --- scenarios -----------------------------------------------------------------------------
    async def test_partial_refund_moves_the_money_and_wizehire_hears_succeeded(
        self, flow: FlowKit
    ) -> None:
        order = await self.order(flow, "wh_ord_part")

        [event] = await flow.process(
            await request_refund(
                flow, refund_body(order.wizehire_order_id, "49.00", refund_id="wh_ref_part")
            )
        )

        assert event.status == EventStatus.DONE, event.last_error
        [made] = self.at_gateway(flow)
        assert str(made.amount) == "49.00" and made.action == "refund"
        seen = wizehire_refund(flow, "wh_ref_part")
        assert seen is not None and seen["status"] == "succeeded", seen
        assert seen["gateway"] == self.gateway and seen["gateway_refund_id"] == made.id
        assert seen["processed_at"] and seen["ghl_transaction_id"] == order.transaction_id
        assert self.ghl_refunded(flow, order) == "49"  # GHL shows it, as for a real provider
        assert_patches_follow_the_contract(flow, "wh_ref_part")
        stored = await stored_refund(flow, "wh_ref_part")
        assert stored is not None and stored.executor == flow.services.mapping.refunds.executor
        assert stored.gateway == self.gateway and stored.gateway_attempted_at is not None

        state = await refresh(flow, order)  # the poller's view: GHL caught up

        assert state.payment_status == "partially_refunded"
        stored = await stored_refund(flow, "wh_ref_part")
        assert stored is not None and stored.ghl_seen_at is not None
        assert len(refund_calls(flow, "wh_ref_part")) == 1  # nothing new to tell Wizehire

    async def test_several_partials_up_to_the_captured_amount_then_nothing_more(
        self, flow: FlowKit
    ) -> None:
        order = await self.order(flow, "wh_ord_many")
        events = [
            await request_refund(
                flow, refund_body(order.wizehire_order_id, amount, refund_id=f"wh_ref_many_{i}")
            )
            for i, amount in enumerate(["100.00", "40.00", "9.00", "0.01"])
        ]

        await flow.process(*events)

        assert sorted(str(r.amount) for r in self.at_gateway(flow)) == ["100.00", "40.00", "9.00"]
        statuses = [
            wizehire_refund(flow, f"wh_ref_many_{i}")["status"]  # type: ignore[index]
            for i in range(4)
        ]
        assert statuses == ["succeeded", "succeeded", "succeeded", "failed"]
        last = wizehire_refund(flow, "wh_ref_many_3")
        assert (
            last is not None
            and "more than the 0.00 USD still refundable" in last["failure_reason"]
            and "gateway" not in last
        )
        assert self.ghl_refunded(flow, order) == "149"
        state = await refresh(flow, order)
        assert state.payment_status == "refunded"

    async def test_full_refund(self, flow: FlowKit) -> None:
        order = await self.order(flow, "wh_ord_full")

        await flow.process(
            await request_refund(
                flow, refund_body(order.wizehire_order_id, "149.00", refund_id="wh_ref_full")
            )
        )

        [made] = self.at_gateway(flow)
        assert str(made.amount) == "149.00"
        assert wizehire_refund(flow, "wh_ref_full")["status"] == "succeeded"  # type: ignore[index]
        assert (await refresh(flow, order)).payment_status == "refunded"

    async def test_over_refund_is_refused_before_any_gateway_call(self, flow: FlowKit) -> None:
        order = await self.order(flow, "wh_ord_over")

        await flow.process(
            await request_refund(
                flow, refund_body(order.wizehire_order_id, "149.01", refund_id="wh_ref_over")
            )
        )

        assert self.gateway_requests(flow) == []
        seen = wizehire_refund(flow, "wh_ref_over")
        assert seen is not None and seen["status"] == "failed"
        assert "more than the 149.00 USD still refundable" in seen["failure_reason"]
        assert_patches_follow_the_contract(flow, "wh_ref_over")

    async def test_decline_fails_with_the_gateways_reason(self, flow: FlowKit) -> None:
        order = await self.order(flow, "wh_ord_decl")
        await self.control(flow, f"{self.gateway}/declines", {"reason": "Do Not Honor"})

        [event] = await flow.process(
            await request_refund(
                flow, refund_body(order.wizehire_order_id, "20.00", refund_id="wh_ref_decl")
            )
        )

        assert event.status == EventStatus.DONE, event.last_error
        assert self.at_gateway(flow) == []
        seen = wizehire_refund(flow, "wh_ref_decl")
        assert seen is not None and seen["status"] == "failed", seen
        assert "Do Not Honor" in seen["failure_reason"]
        assert seen["gateway"] == self.gateway and "gateway_refund_id" not in seen
        assert self.ghl_refunded(flow, order) == "0"
        assert_patches_follow_the_contract(flow, "wh_ref_decl")

    @pytest.mark.parametrize("mode", ["error", "timeout"])
    async def test_answer_lost_after_the_refund_happened_makes_exactly_one(
        self, flow: FlowKit, mode: str
    ) -> None:
        order = await self.order(flow, f"wh_ord_lost_{mode}")
        await self.control(flow, f"{self.gateway}/lose-answer", {"mode": mode})

        [event] = await flow.process(
            await request_refund(
                flow, refund_body(order.wizehire_order_id, "30.00", refund_id=f"wh_ref_lost_{mode}")
            )
        )

        assert event.status == EventStatus.DONE, event.last_error
        assert event.attempts >= 2  # the first attempt never heard the answer
        [made] = self.at_gateway(flow)
        seen = wizehire_refund(flow, f"wh_ref_lost_{mode}")
        assert seen is not None and seen["status"] == "succeeded"
        assert seen["gateway_refund_id"] == made.id
        assert self.ghl_refunded(flow, order) == "30"

    async def test_worker_killed_after_the_gateway_call_makes_exactly_one(
        self, flow: FlowKit
    ) -> None:
        # A patient client: the worker is killed while the gateway (done) holds the answer.
        flow.services.settings = flow.settings.model_copy(
            update={"refund_gateway_timeout_seconds": 60.0}
        )
        order = await self.order(flow, "wh_ord_kill")
        await self.control(flow, f"{self.gateway}/lose-answer", {"mode": "timeout"})
        inbox_id = await request_refund(
            flow, refund_body(order.wizehire_order_id, "25.00", refund_id="wh_ref_kill")
        )

        async def gateway_did_it() -> bool:
            return len(self.at_gateway(flow)) == 1

        worker = flow.worker()
        worker.start()
        await eventually(gateway_did_it, what=f"{self.gateway} to have made the refund")
        await worker.stop(grace_seconds=0.1)  # the kill: the waiting attempt is cancelled

        stored = await stored_refund(flow, "wh_ref_kill")
        assert stored is not None and stored.gateway_attempted_at is not None
        assert stored.gateway_refund_id is None and stored.status == "pending"
        (finished,) = await flow.process(inbox_id)

        assert finished.status == EventStatus.DONE, finished.last_error
        [made] = self.at_gateway(flow)
        seen = wizehire_refund(flow, "wh_ref_kill")
        assert seen is not None and seen["status"] == "succeeded"
        assert seen["gateway_refund_id"] == made.id
        assert self.ghl_refunded(flow, order) == "25"

    async def test_the_same_refund_requested_again_is_not_sent_again(self, flow: FlowKit) -> None:
        order = await self.order(flow, "wh_ord_again")
        body = refund_body(order.wizehire_order_id, "10.00", refund_id="wh_ref_again")
        await flow.process(await request_refund(flow, body))
        await flow.process(await request_refund(flow, body))  # a new delivery, same refund

        assert len(self.at_gateway(flow)) == 1
        assert (
            len(
                [
                    c
                    for c in refund_calls(flow, "wh_ref_again")
                    if c["body"]["status"] == "succeeded"
                ]
            )
            == 1
        )
