"""Flow 3 end to end against the sandbox: Wizehire `refund.requested` -> validated against GHL's
current data -> refused in words, or handed to the manual executor (Wizehire
`manual_action_required` + one Slack message) -> GHL shows the money back -> `succeeded`, and the
order's payment status follows."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.flows.conftest import FlowKit
from tests.flows.support_refunds import (
    paid_order,
    refresh,
    refund_body,
    refund_calls,
    refund_in_ghl,
    register_provider,
    request_refund,
    stored_refund,
    wizehire_refund,
)
from wizesync.db import sync_repo
from wizesync.inbox.context import RetryLater
from wizesync.wizehire.client import idempotency_key


def _order_sync(flow: FlowKit, wizehire_order_id: str) -> dict[str, Any]:
    """What Wizehire now holds of the order's GHL side (its last accepted sync body)."""
    order = flow.wizehire_order(wizehire_order_id)
    assert order is not None and order["ghl_sync"] is not None, order
    return dict(order["ghl_sync"])


def _human_messages(flow: FlowKit) -> list[str]:
    return flow.slack.matching("Refund needs a human")


async def test_refund_above_the_refundable_amount_is_refused_with_a_reason(flow: FlowKit) -> None:
    order = await paid_order(flow, "wh_ord_ref_over")
    body = refund_body(order.wizehire_order_id, "200.00", refund_id="wh_ref_over")

    [event] = await flow.process(await request_refund(flow, body))

    assert event.status == "done", event.last_error
    seen = wizehire_refund(flow, "wh_ref_over")
    assert seen is not None and seen["status"] == "failed"
    assert "more than the 149.00 USD still refundable" in seen["failure_reason"]
    assert seen["ghl_transaction_id"] is None and seen["processed_at"] is None
    [call] = refund_calls(flow, "wh_ref_over")
    assert call["headers"]["idempotency-key"] == idempotency_key("refund", "wh_ref_over", "failed")
    assert not _human_messages(flow)
    stored = await stored_refund(flow, "wh_ref_over")
    assert stored is not None and stored.status == "failed"
    assert stored.last_synced_state == call["body"]


async def test_refund_in_another_currency_is_refused(flow: FlowKit) -> None:
    order = await paid_order(flow, "wh_ord_ref_eur")
    body = refund_body(order.wizehire_order_id, "10.00", refund_id="wh_ref_eur", currency="EUR")

    await flow.process(await request_refund(flow, body))

    seen = wizehire_refund(flow, "wh_ref_eur")
    assert seen is not None and seen["status"] == "failed"
    assert seen["failure_reason"] == (
        f"the refund is in EUR but GHL order {order.ghl_order_id} was paid in USD"
    )
    assert not _human_messages(flow)


async def test_refund_for_an_unknown_order_waits_then_fails_in_words(flow: FlowKit) -> None:
    body = refund_body("wh_ord_never_seen", "10.00", refund_id="wh_ref_unknown")
    inbox_id = await request_refund(flow, body)

    with pytest.raises(RetryLater, match="wh_ord_never_seen is unknown"):
        await flow.invoke(inbox_id, attempt=1)
    assert wizehire_refund(flow, "wh_ref_unknown") is None  # still waiting, nothing said yet

    await flow.invoke(inbox_id, attempt=flow.settings.worker_max_attempts)

    seen = wizehire_refund(flow, "wh_ref_unknown")
    assert seen is not None and seen["status"] == "failed"
    assert "wh_ord_never_seen is unknown here" in seen["failure_reason"]
    assert f"gave up after {flow.settings.worker_max_attempts} attempts" in seen["failure_reason"]


async def test_refund_waits_for_its_order_sync_and_then_proceeds(flow: FlowKit) -> None:
    order = await paid_order(flow, "wh_ord_ref_late")
    async with flow.sessionmaker.begin() as session:  # the order flow has not reached GHL yet
        await sync_repo.set_fields(session, order.sync_id, ghl_order_id=None)
    inbox_id = await request_refund(
        flow, refund_body(order.wizehire_order_id, "49.00", refund_id="wh_ref_late")
    )

    with pytest.raises(RetryLater, match="has no GHL order yet"):
        await flow.invoke(inbox_id, attempt=1)
    async with flow.sessionmaker.begin() as session:
        await sync_repo.set_fields(session, order.sync_id, ghl_order_id=order.ghl_order_id)
    await flow.invoke(inbox_id, attempt=2)

    seen = wizehire_refund(flow, "wh_ref_late")
    assert seen is not None and seen["status"] == "manual_action_required"


async def test_manual_refund_is_handed_to_a_human_then_settled_when_ghl_refunds(
    flow: FlowKit,
) -> None:
    await register_provider(flow, title="Acme Payments")
    order = await paid_order(flow, "wh_ord_ref_ok")
    body = refund_body(
        order.wizehire_order_id,
        "49.00",
        refund_id="wh_ref_ok",
        reason_code="service_issue",
        note="ad never went live",
    )

    [event] = await flow.process(await request_refund(flow, body))

    assert event.status == "done", event.last_error
    seen = wizehire_refund(flow, "wh_ref_ok")
    assert seen is not None
    assert seen["status"] == "manual_action_required"
    assert seen["ghl_transaction_id"] == order.transaction_id
    assert seen["amount"] == "49.00" and seen["currency"] == "USD"
    [message] = _human_messages(flow)
    for expected in (
        "wh_ord_ref_ok",
        order.ghl_order_id,
        order.transaction_id,
        "49.00 USD",
        "service_issue: ad never went live",
        "Acme Payments (nmi)",
    ):
        assert expected in message, (expected, message)
    stored = await stored_refund(flow, "wh_ref_ok")
    assert stored is not None and stored.notified_at is not None
    assert stored.refunded_baseline == Decimal("0")

    # Nothing refunded in GHL yet: a refresh settles nothing.
    await refresh(flow, order)
    assert wizehire_refund(flow, "wh_ref_ok")["status"] == "manual_action_required"  # type: ignore[index]

    await refund_in_ghl(flow, order.transaction_id, "49.00")
    await refresh(flow, order)

    seen = wizehire_refund(flow, "wh_ref_ok")
    assert seen is not None and seen["status"] == "succeeded" and seen["processed_at"]
    assert [c["body"]["status"] for c in refund_calls(flow, "wh_ref_ok")] == [
        "manual_action_required",
        "succeeded",
    ]
    synced = _order_sync(flow, order.wizehire_order_id)
    assert synced["payment_status"] == "partially_refunded"
    assert synced["amount_refunded"] == "49.00"
    assert len(_human_messages(flow)) == 1


async def test_slack_message_says_when_no_provider_is_registered(flow: FlowKit) -> None:
    order = await paid_order(flow, "wh_ord_ref_noprov")
    await flow.process(
        await request_refund(
            flow, refund_body(order.wizehire_order_id, "10.00", refund_id="wh_ref_noprov")
        )
    )

    [message] = _human_messages(flow)
    assert "Payment provider: none registered" in message


async def test_slack_message_goes_out_even_when_ghl_cannot_list_providers(
    flow: FlowKit,
) -> None:
    order = await paid_order(flow, "wh_ord_ref_provfail")
    flow.fault(path="/ghl/payments/integrations/provider/whitelabel", method="GET", status=403)

    [event] = await flow.process(
        await request_refund(
            flow, refund_body(order.wizehire_order_id, "10.00", refund_id="wh_ref_provfail")
        )
    )

    assert event.status == "done", event.last_error
    [message] = _human_messages(flow)
    assert "Payment provider: unknown (GHL did not say: GhlScopeError)" in message
    assert wizehire_refund(flow, "wh_ref_provfail")["status"] == "manual_action_required"  # type: ignore[index]


async def test_same_refund_delivered_twice_gives_one_message_and_one_set_of_writes(
    flow: FlowKit,
) -> None:
    order = await paid_order(flow, "wh_ord_ref_dup")
    body = refund_body(order.wizehire_order_id, "49.00", refund_id="wh_ref_dup")

    first = await request_refund(flow, body, event_id="evt_dup_1")
    second = await request_refund(flow, body, event_id="evt_dup_2")  # Wizehire sent it again
    events = await flow.process(first, second)
    assert [e.status for e in events] == ["done", "done"], [e.last_error for e in events]
    # And once more after everything is settled in GHL.
    await refund_in_ghl(flow, order.transaction_id, "49.00")
    await refresh(flow, order)
    [third] = await flow.process(await request_refund(flow, body, event_id="evt_dup_3"))
    assert third.status == "done", third.last_error

    assert len(_human_messages(flow)) == 1
    calls = refund_calls(flow, "wh_ref_dup")
    assert [c["body"]["status"] for c in calls] == ["manual_action_required", "succeeded"]
    assert wizehire_refund(flow, "wh_ref_dup")["status"] == "succeeded"  # type: ignore[index]


async def test_partial_refunds_summing_to_the_total_settle_in_request_order(
    flow: FlowKit,
) -> None:
    order = await paid_order(flow, "wh_ord_ref_parts")
    oid = order.wizehire_order_id
    ids = [
        await request_refund(flow, refund_body(oid, "100.00", refund_id="wh_ref_p1")),
        await request_refund(flow, refund_body(oid, "49.00", refund_id="wh_ref_p2")),
        await request_refund(flow, refund_body(oid, "0.01", refund_id="wh_ref_p3")),
    ]
    await flow.process(*ids)

    assert wizehire_refund(flow, "wh_ref_p1")["status"] == "manual_action_required"  # type: ignore[index]
    assert wizehire_refund(flow, "wh_ref_p2")["status"] == "manual_action_required"  # type: ignore[index]
    over = wizehire_refund(flow, "wh_ref_p3")
    assert over is not None and over["status"] == "failed"
    assert "149.00 in other refunds not yet carried out" in over["failure_reason"]

    await refund_in_ghl(flow, order.transaction_id, "100.00")
    await refresh(flow, order)
    assert wizehire_refund(flow, "wh_ref_p1")["status"] == "succeeded"  # type: ignore[index]
    assert wizehire_refund(flow, "wh_ref_p2")["status"] == "manual_action_required"  # type: ignore[index]
    assert _order_sync(flow, oid)["payment_status"] == "partially_refunded"

    await refresh(flow, order)  # the 100 already refunded must not settle the 49 as well
    assert wizehire_refund(flow, "wh_ref_p2")["status"] == "manual_action_required"  # type: ignore[index]

    await refund_in_ghl(flow, order.transaction_id, "49.00")
    await refresh(flow, order)
    assert wizehire_refund(flow, "wh_ref_p2")["status"] == "succeeded"  # type: ignore[index]
    synced = _order_sync(flow, oid)
    assert synced["payment_status"] == "refunded" and synced["amount_refunded"] == "149.00"
    assert len(_human_messages(flow)) == 2
