"""Slack notices of the flows are durable: queued with the state change they are about, posted
by the `internal`/`slack.notify` event, retried when Slack is down, and sent once."""

from __future__ import annotations

from decimal import Decimal

import httpx
from sqlalchemy import select

from tests.flows.conftest import FlowKit
from tests.flows.support_refunds import (
    paid_order,
    refund_body,
    register_provider,
    request_refund,
    stored_refund,
    wizehire_refund,
)
from wizesync.db import refund_repo, sync_repo
from wizesync.db.models import EventStatus, InboxEvent
from wizesync.flows.payments.wizehire_sync import push_order_state
from wizesync.inbox.replay import replay
from wizesync.notify.slack import SlackNotifier
from wizesync.wizehire.events import Order


async def notice_rows(flow: FlowKit) -> list[InboxEvent]:
    async with flow.sessionmaker() as session:
        return list(
            (
                await session.execute(
                    select(InboxEvent)
                    .where(InboxEvent.source == "internal", InboxEvent.type == "slack.notify")
                    .order_by(InboxEvent.id)
                )
            ).scalars()
        )


def slack_answers_500_first(flow: FlowKit) -> list[int]:
    """Slack fails the first message with a 500, then behaves; returns the answers given."""
    answers: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if not answers:
            answers.append(500)
            return httpx.Response(500, text="internal_error")
        answers.append(200)
        return flow.slack.handle(request)

    assert flow.transport is not None
    flow.transport.routes["slack.test"] = httpx.MockTransport(handle)
    return answers


async def test_a_refund_for_a_human_reaches_slack_through_an_outage(flow: FlowKit) -> None:
    await register_provider(flow, title="Acme Payments")
    order = await paid_order(flow, "wh_ord_slack_500")
    answers = slack_answers_500_first(flow)

    [event] = await flow.process(
        await request_refund(
            flow,
            refund_body(
                order.wizehire_order_id,
                "49.00",
                refund_id="wh_ref_slack_500",
                reason_code="service_issue",
                note="ad never went live",
            ),
        )
    )

    assert event.status == EventStatus.DONE, event.last_error
    assert wizehire_refund(flow, "wh_ref_slack_500")["status"] == "manual_action_required"  # type: ignore[index]
    (notice,) = await notice_rows(flow)
    assert notice.status == EventStatus.DONE and notice.attempts == 2, notice.last_error
    assert notice.event_id == "slack:refund-manual:wh_ref_slack_500"
    assert notice.ordering_key == "slack"
    assert answers == [500, 200]
    [message] = flow.slack.matching("Refund needs a human")
    for expected in (
        "wh_ord_slack_500",
        order.ghl_order_id,
        order.transaction_id,
        "49.00 USD",
        "service_issue: ad never went live",
        "Acme Payments (nmi)",
    ):
        assert expected in message, (expected, message)


async def test_a_refund_run_again_tells_slack_once(flow: FlowKit) -> None:
    order = await paid_order(flow, "wh_ord_slack_twice")
    inbox_id = await request_refund(
        flow, refund_body(order.wizehire_order_id, "10.00", refund_id="wh_ref_slack_twice")
    )
    await flow.process(inbox_id)
    stored = await stored_refund(flow, "wh_ref_slack_twice")
    assert stored is not None and stored.notified_at is not None
    # As if the first run's guard were lost: only the notice's key stands between a re-run
    # and a second message.
    async with flow.sessionmaker.begin() as session:
        await refund_repo.set_fields(session, stored.id, notified_at=None)

    assert await replay(flow.sessionmaker, inbox_id) == "queued"
    [event] = await flow.process(inbox_id)

    assert event.status == EventStatus.DONE, event.last_error
    assert len(await notice_rows(flow)) == 1
    assert len(flow.slack.matching("Refund needs a human")) == 1


async def test_without_a_slack_webhook_a_manual_refund_queues_nothing(flow: FlowKit) -> None:
    flow.services.slack = SlackNotifier(flow.http, None)
    order = await paid_order(flow, "wh_ord_no_slack")

    [event] = await flow.process(
        await request_refund(
            flow, refund_body(order.wizehire_order_id, "10.00", refund_id="wh_ref_no_slack")
        )
    )

    assert event.status == EventStatus.DONE, event.last_error
    assert wizehire_refund(flow, "wh_ref_no_slack")["status"] == "manual_action_required"  # type: ignore[index]
    assert await notice_rows(flow) == []
    stored = await stored_refund(flow, "wh_ref_no_slack")
    assert stored is not None and stored.notified_at is None  # a later run with Slack still can
    assert flow.slack.messages == []


async def test_each_status_change_is_told_once(flow: FlowKit) -> None:
    order = Order.model_validate(flow.order("wh_ord_status_notes"))
    async with flow.sessionmaker.begin() as session:
        row = await sync_repo.create_or_update_from_order(session, order)
        await sync_repo.set_fields(session, row.id, ghl_location_id=flow.location_id)
        sync_id = row.id
    ctx = flow.context()
    await push_order_state(ctx, sync_id)  # the first sync is not a change: no notice
    assert await notice_rows(flow) == []

    async with flow.sessionmaker.begin() as session:
        await sync_repo.set_fields(
            session, sync_id, payment_status="paid", amount_paid=Decimal("149.00")
        )
    await push_order_state(ctx, sync_id)
    assert await push_order_state(ctx, sync_id) is False  # a re-run: nothing new to tell
    async with flow.sessionmaker.begin() as session:
        await sync_repo.set_fields(
            session, sync_id, payment_status="refunded", amount_refunded=Decimal("149.00")
        )
    await push_order_state(ctx, sync_id)

    assert len(await notice_rows(flow)) == 2
    await flow.send_notices()
    assert len(flow.slack.matching("wh_ord_status_notes: payment status pending -> paid")) == 1
    assert len(flow.slack.matching("wh_ord_status_notes: payment status paid -> refunded")) == 1
