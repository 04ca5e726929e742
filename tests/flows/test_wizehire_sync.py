"""push_order_state: Wizehire is patched only when the order's state changed, and a retry after a
crash sends the very same body under the very same Idempotency-Key."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.flows.conftest import FlowKit
from wizesync.db import sync_repo
from wizesync.flows.payments.wizehire_sync import push_order_state, state_digest
from wizesync.inbox.context import RetryLater
from wizesync.wizehire.client import idempotency_key
from wizesync.wizehire.events import Order


async def _record(flow: FlowKit, order_id: str) -> int:
    order = Order.model_validate(flow.order(order_id))
    async with flow.sessionmaker.begin() as session:
        row = await sync_repo.create_or_update_from_order(session, order)
        await sync_repo.set_fields(session, row.id, ghl_location_id=flow.location_id)
        return row.id


async def test_unchanged_state_is_pushed_once(flow: FlowKit) -> None:
    sync_id = await _record(flow, "wh_ord_push_1")
    ctx = flow.context()

    assert await push_order_state(ctx, sync_id) is True
    assert await push_order_state(ctx, sync_id) is False

    calls = flow.order_syncs("wh_ord_push_1")
    assert len(calls) == 1
    body = calls[0]["body"]
    assert body["payment_status"] == "pending"
    assert body["ghl_location_id"] == flow.location_id
    state = {k: v for k, v in body.items() if k != "synced_at"}
    assert calls[0]["headers"]["idempotency-key"] == idempotency_key(
        "wh_ord_push_1", "sync", state_digest(body)
    )
    row = await flow.sync_order("wh_ord_push_1")
    assert row is not None and row.last_synced_state == state and row.pending_sync_state is None


async def test_changed_state_is_pushed_again_and_slack_told(flow: FlowKit) -> None:
    sync_id = await _record(flow, "wh_ord_push_2")
    ctx = flow.context()
    await push_order_state(ctx, sync_id)
    async with flow.sessionmaker.begin() as session:
        await sync_repo.set_fields(
            session, sync_id, payment_status="paid", amount_paid=Decimal("149.00")
        )

    assert await push_order_state(ctx, sync_id) is True

    calls = flow.order_syncs("wh_ord_push_2")
    assert [c["body"]["payment_status"] for c in calls] == ["pending", "paid"]
    assert calls[1]["body"]["amount_paid"] == "149.00"
    assert calls[0]["headers"]["idempotency-key"] != calls[1]["headers"]["idempotency-key"]
    await flow.send_notices()
    assert flow.slack.matching("wh_ord_push_2: payment status pending -> paid")


async def test_retry_after_a_lost_answer_sends_the_same_body_and_key(flow: FlowKit) -> None:
    sync_id = await _record(flow, "wh_ord_push_3")
    ctx = flow.context()
    # Wizehire applies the PATCH, but the answer is lost (a 503 after the work), every try.
    rule = flow.fault(
        path="/wizehire/v1/orders/*/sync", method="PATCH", status=503, phase="after", times=5
    )

    with pytest.raises(RetryLater):
        await push_order_state(ctx, sync_id)
    flow.sb.faults.remove(rule.id)
    assert await push_order_state(ctx, sync_id) is True

    calls = flow.order_syncs("wh_ord_push_3")
    assert len(calls) == 6
    assert len({c["headers"]["idempotency-key"] for c in calls}) == 1
    assert len({str(c["body"]) for c in calls}) == 1
    # Wizehire performed the first one; every later one was answered from its idempotency store.
    assert not calls[0].get("replayed")
    assert all(c.get("replayed") for c in calls[1:])
    order = flow.wizehire_order("wh_ord_push_3")
    assert order is not None and order["ghl_sync"]["payment_status"] == "pending"


async def test_a_state_that_comes_back_is_a_new_body_under_a_new_key(flow: FlowKit) -> None:
    """pending (lost answer) -> paid (never sent) -> pending again: the last PATCH carries a new
    `synced_at`, so it goes under a new key, which Wizehire applies (an old key with another body
    would be refused with 422 idempotency_key_reused and the event would die)."""
    sync_id = await _record(flow, "wh_ord_push_4")
    ctx = flow.context()
    rule = flow.fault(
        path="/wizehire/v1/orders/*/sync", method="PATCH", status=503, phase="after", times=5
    )
    with pytest.raises(RetryLater):
        await push_order_state(ctx, sync_id)  # Wizehire applied "pending"; the answer was lost
    flow.sb.faults.remove(rule.id)
    rule = flow.fault(
        path="/wizehire/v1/orders/*/sync", method="PATCH", status=503, phase="before", times=5
    )
    async with flow.sessionmaker.begin() as session:
        await sync_repo.set_fields(session, sync_id, payment_status="paid")
    with pytest.raises(RetryLater):
        await push_order_state(ctx, sync_id)  # "paid" stored to send, never reaches Wizehire
    flow.sb.faults.remove(rule.id)
    async with flow.sessionmaker.begin() as session:
        await sync_repo.set_fields(session, sync_id, payment_status="pending")

    assert await push_order_state(ctx, sync_id) is True

    calls = flow.order_syncs("wh_ord_push_4")
    first, last = calls[0], calls[-1]
    assert first["body"]["payment_status"] == last["body"]["payment_status"] == "pending"
    assert first["body"]["synced_at"] != last["body"]["synced_at"]
    assert first["headers"]["idempotency-key"] != last["headers"]["idempotency-key"]
    assert not last.get("replayed")
    row = await flow.sync_order("wh_ord_push_4")
    assert row is not None and row.pending_sync_state is None
