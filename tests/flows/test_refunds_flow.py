"""Flow 3 in its surroundings: after a real order flow, settled by the real poller, through a
gateway executor added by name, and with Wizehire losing answers or being down."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.flows.conftest import FlowKit, default_mapping
from tests.flows.support_refunds import (
    paid_order,
    refresh,
    refund_body,
    refund_calls,
    refund_in_ghl,
    request_refund,
    stored_refund,
    wizehire_refund,
)
from wizesync.db import refund_repo
from wizesync.flows.payments.payment_state import PaymentState
from wizesync.flows.payments.poller import Poller
from wizesync.flows.refunds.executors import ExecutorResult, RefundCase, register_executor
from wizesync.flows.refunds.validation import check_refunds_mapping
from wizesync.inbox.context import RetryLater
from wizesync.mapping import Mapping, MappingError, Refunds


def _poller(flow: FlowKit) -> Poller:
    return Poller(settings=flow.settings, sessionmaker=flow.sessionmaker, services=flow.services)


def _order_sync(flow: FlowKit, wizehire_order_id: str) -> dict[str, Any]:
    order = flow.wizehire_order(wizehire_order_id)
    assert order is not None and order["ghl_sync"] is not None, order
    return dict(order["ghl_sync"])


class TestAfterTheOrderFlow:
    @pytest.fixture
    def flow_mapping(self) -> Mapping:
        return default_mapping(strategy="invoice")

    async def test_order_and_refund_together_end_refunded_once_the_poller_sees_it(
        self,
        flow: FlowKit,
    ) -> None:
        order = flow.order("wh_ord_full_1")
        order_event = await flow.deliver_order("order.created", order)
        # Sent right behind the order: it queues behind it (same ordering key).
        refund_event = await request_refund(
            flow,
            refund_body(
                order["id"], "149.00", refund_id="wh_ref_full_1", reason_code="duplicate", note=None
            ),
        )

        events = await flow.process(order_event, refund_event)

        assert [e.status for e in events] == ["done", "done"], [e.last_error for e in events]
        (ghl_order,) = flow.orders()
        (txn,) = flow.transactions(ghl_order["_id"])
        seen = wizehire_refund(flow, "wh_ref_full_1")
        assert seen is not None and seen["status"] == "manual_action_required"
        assert seen["ghl_transaction_id"] == txn["_id"]
        [message] = flow.slack.matching("Refund needs a human")
        assert "Reason: duplicate" in message and ghl_order["_id"] in message

        await refund_in_ghl(flow, txn["_id"], "149.00")  # a human did it; no webhook follows
        [result] = await _poller(flow).poll_all(force=True)

        assert result.error is None, result.error
        seen = wizehire_refund(flow, "wh_ref_full_1")
        assert seen is not None and seen["status"] == "succeeded" and seen["processed_at"]
        synced = _order_sync(flow, order["id"])
        assert synced["payment_status"] == "refunded"
        assert synced["amount_refunded"] == "149.00"


# --- a gateway executor, added by name -----------------------------------------------------------


@dataclass
class RecordingGateway:
    """What a gateway executor looks like: sends the refund (idempotent per refund id) and
    leaves `pending` until GHL shows the money back."""

    name: str = "test-gateway"
    sent: list[tuple[str, str, str]] = field(default_factory=list)

    async def execute(
        self, ctx: Any, refund: RefundCase, order_state: PaymentState
    ) -> ExecutorResult:
        if refund.amount > order_state.by_transaction[refund.ghl_transaction_id].refundable:
            return ExecutorResult("failed", "the gateway says: amount too large")
        self.sent.append((refund.wizehire_refund_id, refund.ghl_transaction_id, str(refund.amount)))
        return ExecutorResult("pending")


GATEWAY = RecordingGateway()


def _gateway() -> RecordingGateway:
    return GATEWAY


register_executor("test-gateway", _gateway)


class TestGatewayExecutor:
    @pytest.fixture
    def flow_mapping(self) -> Mapping:
        return default_mapping().model_copy(update={"refunds": Refunds(executor="test-gateway")})

    async def test_executor_named_in_the_mapping_runs_and_the_poller_settles_it(
        self,
        flow: FlowKit,
    ) -> None:
        GATEWAY.sent.clear()
        order = await paid_order(flow, "wh_ord_gw")

        await flow.process(
            await request_refund(
                flow, refund_body(order.wizehire_order_id, "20.00", refund_id="wh_ref_gw")
            )
        )

        assert GATEWAY.sent == [("wh_ref_gw", order.transaction_id, "20.00")]
        assert wizehire_refund(flow, "wh_ref_gw")["status"] == "pending"  # type: ignore[index]
        assert not flow.slack.matching("Refund needs a human")  # not the manual executor
        stored = await stored_refund(flow, "wh_ref_gw")
        assert stored is not None and stored.executor == "test-gateway"

        await refund_in_ghl(flow, order.transaction_id, "20.00")
        await _poller(flow).poll_all(force=True)

        assert wizehire_refund(flow, "wh_ref_gw")["status"] == "succeeded"  # type: ignore[index]
        assert [c["body"]["status"] for c in refund_calls(flow, "wh_ref_gw")] == [
            "pending",
            "succeeded",
        ]


def test_unknown_executor_name_is_refused_where_the_services_are_built() -> None:
    mapping = default_mapping().model_copy(update={"refunds": Refunds(executor="paypal")})
    with pytest.raises(
        MappingError,
        match=r"refunds.executor: unknown refund executor "
        r"'paypal'; known: authorize_net, auto, .*manual",
    ):
        check_refunds_mapping(mapping)


# --- Wizehire trouble ----------------------------------------------------------------------------


async def test_lost_wizehire_answer_is_retried_under_the_same_key_and_performed_once(
    flow: FlowKit,
) -> None:
    order = await paid_order(flow, "wh_ord_lost")
    flow.fault(path="/wizehire/v1/refunds/*", method="PATCH", status=502, phase="after", times=1)

    [event] = await flow.process(
        await request_refund(
            flow, refund_body(order.wizehire_order_id, "10.00", refund_id="wh_ref_lost")
        )
    )

    assert event.status == "done", event.last_error
    calls = refund_calls(flow, "wh_ref_lost")
    assert len(calls) == 2  # the first was performed, its answer lost; the retry replayed
    assert calls[0]["headers"]["idempotency-key"] == calls[1]["headers"]["idempotency-key"]
    assert calls[0]["body"] == calls[1]["body"]
    seen = wizehire_refund(flow, "wh_ref_lost")
    assert seen is not None and len(seen["history"]) == 1
    assert seen["status"] == "manual_action_required"


async def test_wizehire_down_the_decision_waits_and_is_sent_on_the_next_run(
    flow: FlowKit,
) -> None:
    order = await paid_order(flow, "wh_ord_down")
    inbox_id = await request_refund(
        flow, refund_body(order.wizehire_order_id, "10.00", refund_id="wh_ref_down")
    )
    flow.fault(path="/wizehire/v1/refunds/*", method="PATCH", status=503)

    with pytest.raises(RetryLater, match="Wizehire refund wh_ref_down update"):
        await flow.invoke(inbox_id, attempt=1)
    stored = await stored_refund(flow, "wh_ref_down")
    assert stored is not None and stored.status == "manual_action_required"
    assert stored.last_synced_state is None
    assert wizehire_refund(flow, "wh_ref_down") is None

    flow.clear_faults()
    await refresh(flow, order)  # any refresh (the poller's) sends what Wizehire lacks

    assert wizehire_refund(flow, "wh_ref_down")["status"] == "manual_action_required"  # type: ignore[index]
    await flow.invoke(inbox_id, attempt=2)  # the event's retry finds nothing left to send
    await flow.send_notices()
    assert len(flow.slack.matching("Refund needs a human")) == 1
    [performed] = [
        c for c in refund_calls(flow, "wh_ref_down") if c.get("response", {}).get("status") == 200
    ]
    assert performed["body"]["status"] == "manual_action_required"
    assert len(wizehire_refund(flow, "wh_ref_down")["history"]) == 1  # type: ignore[index]


async def test_settled_refund_wizehire_missed_is_found_and_sent_again(flow: FlowKit) -> None:
    order = await paid_order(flow, "wh_ord_missed")
    await flow.process(
        await request_refund(
            flow, refund_body(order.wizehire_order_id, "149.00", refund_id="wh_ref_missed")
        )
    )
    await refund_in_ghl(flow, order.transaction_id, "149.00")
    flow.fault(path="/wizehire/v1/refunds/*", method="PATCH", status=503)

    with pytest.raises(RetryLater, match="Wizehire refund wh_ref_missed update"):
        await refresh(flow, order)  # the poller's refresh: decided, but Wizehire is away

    stored = await stored_refund(flow, "wh_ref_missed")
    assert stored is not None and stored.status == "succeeded" and stored.processed_at
    async with flow.sessionmaker() as session:
        assert await refund_repo.sync_orders_with_unsent_refunds(session, flow.location_id) == [
            order.sync_id
        ]

    flow.clear_faults()
    await refresh(flow, order)

    seen = wizehire_refund(flow, "wh_ref_missed")
    assert seen is not None and seen["status"] == "succeeded"
    assert seen["processed_at"] == stored.processed_at.isoformat().replace("+00:00", "Z")
    async with flow.sessionmaker() as session:
        assert await refund_repo.sync_orders_with_unsent_refunds(session, flow.location_id) == []
