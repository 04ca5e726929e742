"""GHL webhooks advance the Wizehire order through an internal `order.advance` on the order's own
ordering key: an invoice paid in GHL gets its order fulfilled without a Wizehire event, the
webhooks GHL sends while the order flow makes the order cost no GHL request, a later one does
refresh, and a GHL event run twice queues one advance.

The sandbox sends its GHL webhooks here (mode `send`) to a receiver that stores them through the
real ingest path; every GHL request of the service returns only once the webhooks it caused are
stored (GHL at its fastest), so "received before the flow's refresh" is deterministic.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.flows.conftest import LOCATION_ID, SANDBOX_HOST, FlowKit, default_mapping
from tests.flows.support_advance import (
    advance_events,
    attempts_of,
    process_with_advances,
    run_ghl,
    wait_advances_finished,
)
from tests.flows.support_payments import (
    deliver_ghl,
    ghl_webhooks,
    outbox_mark,
    poller,
    refund_in_ghl,
    synced_checkout,
)
from tests.flows.support_refunds import refund_body, request_refund, stored_refund
from tests.support.waiting import eventually
from wizesync.db.models import EventStatus, InboxEvent
from wizesync.ghl import models as m
from wizesync.inbox import ingest
from wizesync.inbox.classify import classify_ghl
from wizesync.inbox.replay import replay
from wizesync.mapping import Mapping
from wizesync_sandbox.settings import SandboxConfig

SERVICE_HOST = "service.test"


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(
        service_url=f"http://{SERVICE_HOST}",
        webhooks="send",
        webhook_retry_seconds=0.05,
        fault_seed=1234,
    )


@pytest.fixture
def flow_mapping() -> Mapping:
    return default_mapping(strategy="invoice")


class _DrainingTransport(httpx.AsyncBaseTransport):
    """The sandbox, answering each request only after the webhooks it caused were delivered."""

    def __init__(self, flow: FlowKit, inner: httpx.AsyncBaseTransport) -> None:
        self.flow, self.inner = flow, inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await self.flow.sb.outbox.drain()
        return response


@pytest.fixture
def received(flow: FlowKit) -> list[int]:
    """GHL webhooks from the sandbox stored in the inbox (their inbox ids, in arrival order)."""
    assert flow.transport is not None
    ids: list[int] = []

    async def receive(request: httpx.Request) -> httpx.Response:
        if request.url.path != "/webhooks/ghl":
            return httpx.Response(202)
        raw = request.content
        stored = await ingest.store(
            flow.sessionmaker,
            source="ghl",
            event_id=json.loads(raw)["webhookId"],
            raw_body=raw,
            classified=classify_ghl(raw)[0],
        )
        ids.append(stored.id)
        return httpx.Response(202, json={"id": stored.id})

    flow.transport.routes[SERVICE_HOST] = httpx.MockTransport(receive)
    flow.transport.routes[SANDBOX_HOST] = _DrainingTransport(
        flow, flow.transport.routes[SANDBOX_HOST]
    )
    return ids


def payload_of(event: InboxEvent) -> dict[str, Any]:
    assert isinstance(event.payload, dict), event.payload
    return event.payload


def ghl_request_count(flow: FlowKit) -> int:
    assert flow.transport is not None
    return len([1 for _, path, _ in flow.transport.sent if path.startswith("/ghl/")])


async def test_invoice_paid_in_ghl_gets_its_order_fulfilled_without_a_wizehire_event(
    flow: FlowKit, received: list[int]
) -> None:
    order = flow.order(status="pending")
    async with flow.running_worker():
        (created,) = await flow.wait_finished(await flow.deliver_order("order.created", order))
        assert created.status == EventStatus.DONE, created.last_error
        (invoice,) = flow.invoices(order["id"])
        assert flow.orders() == []

        # The customer pays the invoice in GHL: GHL makes the order and tells us by webhook.
        await flow.services.ghl.record_invoice_payment(
            LOCATION_ID, invoice["_id"], m.RecordInvoicePayment(mode="cash")
        )

        async def fulfilled() -> bool:
            record = await flow.sync_order(order["id"])
            wizehire = flow.wizehire_order(order["id"]) or {}
            sync = wizehire.get("ghl_sync") or {}
            return bool(
                record and record.ghl_fulfillment_id and sync.get("payment_status") == "paid"
            )

        await eventually(fulfilled, what="the GHL order fulfilled and Wizehire told paid")
        events = await flow.wait_finished(*received)
        advances = await wait_advances_finished(flow)

    assert {e.type for e in events} >= {"InvoicePaid", "OrderCreate"}
    assert {e.status for e in [*events, *advances]} == {EventStatus.DONE}, [
        e.last_error for e in [*events, *advances]
    ]
    (ghl_order,) = flow.orders()
    assert ghl_order["source"]["id"] == invoice["_id"]
    (fulfillment,) = flow.fulfillments(ghl_order["_id"])
    record = await flow.sync_order(order["id"])
    assert record is not None
    assert (record.ghl_order_id, record.ghl_order_source, record.ghl_fulfillment_id) == (
        ghl_order["_id"],
        "invoice",
        fulfillment["_id"],
    )
    assert record.wizehire_status == "pending"  # Wizehire sent nothing new
    body = flow.order_syncs(order["id"])[-1]["body"]
    assert (body["payment_status"], body["amount_paid"], body["ghl_fulfillment_id"]) == (
        "paid",
        "149.00",
        fulfillment["_id"],
    )
    assert [
        b["payment_status"]
        for b in [c["body"] for c in flow.order_syncs(order["id"]) if not c.get("replayed")]
    ] == ["pending", "paid"]
    assert all(a.ordering_key == f"wizehire:order:{order['id']}" for a in advances)
    async with flow.sessionmaker() as session:
        wizehire_events = (
            await session.execute(
                select(func.count()).select_from(InboxEvent).where(InboxEvent.source == "wizehire")
            )
        ).scalar_one()
    assert wizehire_events == 1


async def test_webhooks_of_an_order_being_made_cost_no_ghl_request_a_later_one_refreshes(
    flow: FlowKit, received: list[int]
) -> None:
    order = flow.order()  # paid: the order flow records the payment, GHL makes the order
    async with flow.running_worker():
        (created,) = await flow.wait_finished(await flow.deliver_order("order.created", order))
        events = await flow.wait_finished(*received)
        advances = await wait_advances_finished(flow)

    assert created.status == EventStatus.DONE, created.last_error
    assert {e.type for e in events} >= {"InvoicePaid", "OrderCreate"}
    assert {e.status for e in [*events, *advances]} == {EventStatus.DONE}
    assert len(advances) >= 2  # one per webhook of a known invoice/order
    record = await flow.sync_order(order["id"])
    assert record is not None and record.ghl_checked_at is not None
    for advance in advances:
        (attempt,) = await attempts_of(flow, advance.id)
        cause = payload_of(advance)["cause"]
        assert not attempt.outbound_calls, (cause, attempt.outbound_calls)
        assert cause["event_id"] in {e.event_id for e in events}
        # Received before the order flow's refresh started: that refresh covered it.
        assert datetime.fromisoformat(cause["received_at"]) <= record.ghl_checked_at
    (ghl_order,) = flow.orders()
    assert len(flow.fulfillments(ghl_order["_id"])) == 1
    assert [
        c["body"]["payment_status"] for c in flow.order_syncs(order["id"]) if not c.get("replayed")
    ] == ["paid"]

    # GHL tells us about the order again after that refresh: this one reads GHL.
    before = ghl_request_count(flow)
    checked_before = record.ghl_checked_at
    status_update = next(e for e in events if e.type == "OrderStatusUpdate")
    event = await run_ghl(
        flow,
        {k: v for k, v in payload_of(status_update).items() if k not in ("timestamp", "webhookId")},
    )

    assert event.status == EventStatus.DONE, event.last_error
    latest = (await advance_events(flow))[-1]
    assert latest.status == EventStatus.DONE and latest.id not in {a.id for a in advances}
    (attempt,) = await attempts_of(flow, latest.id)
    assert attempt.outbound_calls, "an advance received after the last refresh must read GHL"
    assert ghl_request_count(flow) > before
    refreshed = await flow.sync_order(order["id"])
    assert refreshed is not None and refreshed.ghl_checked_at is not None
    assert refreshed.ghl_checked_at > checked_before
    assert len(flow.fulfillments(ghl_order["_id"])) == 1
    assert len([c for c in flow.order_syncs(order["id"]) if not c.get("replayed")]) == 1


class TestOneAdvancePerGhlEvent:
    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(service_url=None, webhooks="off", fault_seed=1234)

    async def test_ghl_event_run_twice_queues_one_advance_a_replay_queues_another(
        self, flow: FlowKit
    ) -> None:
        order = flow.order(status="pending")
        (created,) = await flow.process(await flow.deliver_order("order.created", order))
        assert created.status == EventStatus.DONE, created.last_error
        (invoice,) = flow.invoices(order["id"])
        mark = outbox_mark(flow)
        await flow.services.ghl.record_invoice_payment(
            LOCATION_ID, invoice["_id"], m.RecordInvoicePayment(mode="cash")
        )
        (paid,) = ghl_webhooks(flow, mark, types=("InvoicePaid",))
        inbox_id = await deliver_ghl(flow, paid)

        await flow.invoke(inbox_id)
        await flow.invoke(inbox_id, attempt=2)  # a retry (or a crash before the outcome)
        assert len(await advance_events(flow)) == 1
        (ghl_event,) = await process_with_advances(flow, inbox_id)  # and once by the worker

        (advance,) = await advance_events(flow)
        assert ghl_event.status == EventStatus.DONE, ghl_event.last_error
        assert advance.event_id == f"advance:{ghl_event.event_id}"
        assert advance.status == EventStatus.DONE, advance.last_error
        record = await flow.sync_order(order["id"])
        assert record is not None and record.ghl_fulfillment_id is not None
        assert payload_of(advance)["sync_order_id"] == record.id
        assert payload_of(advance)["cause"]["type"] == "InvoicePaid"

        # An operator replays the GHL event: a fresh look, under its own id.
        assert await replay(flow.sessionmaker, inbox_id) == EventStatus.QUEUED.value
        await process_with_advances(flow, inbox_id)
        first, second = await advance_events(flow)
        assert first.id == advance.id
        assert second.event_id.startswith(f"advance:{ghl_event.event_id}:replay:")
        assert second.status == EventStatus.DONE, second.last_error
        (attempt,) = await attempts_of(flow, second.id)
        assert attempt.outbound_calls  # the replay reads GHL again
        assert len(flow.fulfillments(record.ghl_order_id or "")) == 1

    async def test_poller_queues_an_advance_for_an_adopted_order_without_fulfillment(
        self, flow: FlowKit
    ) -> None:
        """Every webhook of the payment is lost: the poller's refresh adopts the invoice's order
        and queues the advance that makes its fulfillment on the order's line."""
        order = flow.order(status="pending")
        (created,) = await flow.process(await flow.deliver_order("order.created", order))
        assert created.status == EventStatus.DONE, created.last_error
        (invoice,) = flow.invoices(order["id"])
        await flow.services.ghl.record_invoice_payment(
            LOCATION_ID, invoice["_id"], m.RecordInvoicePayment(mode="cash")
        )

        result = await poller(flow).poll_location(LOCATION_ID, force=True)
        assert result is not None and result.error is None, result
        (advance,) = await advance_events(flow)
        assert advance.status == EventStatus.QUEUED
        again = await poller(flow).poll_location(LOCATION_ID, force=True)
        assert again is not None and again.error is None
        assert len(await advance_events(flow)) == 1  # queued once per GHL order

        (done,) = await process_with_advances(flow, advance.id)

        assert done.status == EventStatus.DONE, done.last_error
        (ghl_order,) = flow.orders()
        (fulfillment,) = flow.fulfillments(ghl_order["_id"])
        record = await flow.sync_order(order["id"])
        assert record is not None
        assert (record.ghl_order_id, record.ghl_fulfillment_id) == (
            ghl_order["_id"],
            fulfillment["_id"],
        )
        assert flow.order_syncs(order["id"])[-1]["body"]["payment_status"] == "paid"


class TestAdvanceKeepsTheRefreshsWork:
    """A GHL webhook of a finished order still settles refunds and mirrors the subscription:
    its advance ends in the refresh (`advance_order` -> `sync_state`)."""

    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(service_url=None, webhooks="off", fault_seed=1234)

    @staticmethod
    def order_webhook(flow: FlowKit, ghl_order_id: str) -> dict[str, Any]:
        return {**flow.sb.store.orders[ghl_order_id], "type": "OrderStatusUpdate"}

    async def test_refund_done_in_ghl_is_settled_by_the_next_webhooks_advance(
        self, flow: FlowKit
    ) -> None:
        synced = await synced_checkout(flow, outcome="paid")
        refund = refund_body(synced.wizehire_order_id, "49.00")
        (requested,) = await flow.process(await request_refund(flow, refund))
        assert requested.status == EventStatus.DONE, requested.last_error
        refund_id = refund["data"]["refund"]["id"]
        waiting = await stored_refund(flow, refund_id)
        assert waiting is not None and waiting.status == "manual_action_required"
        await refund_in_ghl(flow, synced.ghl_order_id, "49.00")

        event = await run_ghl(flow, self.order_webhook(flow, synced.ghl_order_id))

        assert event.status == EventStatus.DONE, event.last_error
        (advance,) = await advance_events(flow)
        assert advance.status == EventStatus.DONE, advance.last_error
        stored = await stored_refund(flow, refund_id)
        assert stored is not None and stored.status == "succeeded"
        body = flow.order_syncs(synced.wizehire_order_id)[-1]["body"]
        assert (body["payment_status"], body["amount_refunded"]) == ("partially_refunded", "49.00")

    async def test_subscription_cancelled_in_ghl_is_mirrored_by_the_next_webhooks_advance(
        self, flow: FlowKit
    ) -> None:
        synced = await synced_checkout(flow, outcome="paid", plan=True)
        (sub,) = [
            s for s in flow.sb.store.subscriptions.values() if s["entityId"] == synced.ghl_order_id
        ]
        answer = await flow.control.post(f"/_sandbox/ghl/subscriptions/{sub['_id']}/cancel")
        assert answer.status_code == 200, answer.text

        event = await run_ghl(flow, self.order_webhook(flow, synced.ghl_order_id))

        assert event.status == EventStatus.DONE, event.last_error
        mirrored = flow.order_syncs(synced.wizehire_order_id)[-1]["body"]["subscription"]
        assert (mirrored["ghl_subscription_id"], mirrored["status"]) == (sub["_id"], "canceled")
