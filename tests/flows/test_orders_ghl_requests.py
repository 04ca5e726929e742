"""GHL requests per new order, the GHL webhooks it causes included: the floor is 5 (contact upsert,
invoice, its payment, the order's lookup, the fulfillment). The payment state comes from the
payment's answer and the transactions the lookup lists, and the webhooks of the flow's own payment
are news already stored, whenever they arrive (module doc of `flows/payments/advance.py`); the
one that may carry other news (a later `OrderStatusUpdate`) still reads GHL.

GHL webhooks are recorded by the fake GHL (not sent) and delivered by the test at a chosen moment:
`early` right after the GHL request that caused them (GHL at its fastest), `mid_flow` when the
flow asks for the fulfillment (after its reads began, before it stored the state: the race the
old "received before the reads" rule lost), `late` after the order flow finished.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.flows.conftest import SANDBOX_HOST, FlowKit, default_mapping
from tests.flows.support_advance import advance_events, attempts_of, wait_advances_finished
from tests.flows.support_payments import deliver_ghl
from tests.flows.test_orders_idempotency import assert_one_of_each
from wizesync.db.base import utcnow
from wizesync.db.models import EventStatus
from wizesync.db.sync_models import SyncOrder
from wizesync.flows.payments.advance import news_already_stored
from wizesync.mapping import Mapping


@pytest.fixture
def flow_mapping() -> Mapping:
    return default_mapping(strategy="invoice")


class _Deliverer(httpx.AsyncBaseTransport):
    """The fake GHL; delivers the webhooks it recorded so far when `due(request)` says so."""

    def __init__(
        self, flow: FlowKit, inner: httpx.AsyncBaseTransport, due: Callable[[httpx.Request], bool]
    ) -> None:
        self.flow, self.inner, self.due = flow, inner, due
        self.sent = 0
        self.inbox_ids: list[int] = []

    async def deliver_recorded(self) -> None:
        recorded = list(self.flow.sb.outbox.deliveries.values())
        for delivery in recorded[self.sent :]:
            if delivery.source == "ghl":
                self.inbox_ids.append(await deliver_ghl(self.flow, delivery.payload))
        self.sent = len(recorded)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.due(request):  # before the request: what earlier requests caused
            await self.deliver_recorded()
        return await self.inner.handle_async_request(request)


def _asks_for_fulfillment(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path.endswith("/fulfillments")


_DUE: dict[str, Callable[[httpx.Request], bool]] = {
    "early": lambda request: True,
    "mid_flow": _asks_for_fulfillment,
    "late": lambda request: False,
}


def _pattern(method: str, path: str) -> str:
    return f"{method} " + re.sub(r"/[0-9a-f]{16,}", "/{id}", path.removeprefix("/ghl"))


async def ghl_calls_of(flow: FlowKit, inbox_id: int) -> list[str]:
    """The GHL requests of the event's first attempt, from its attempt log. (A later attempt,
    after a transient failure such as Wizehire timing out on a loaded machine, starts from the
    record and refreshes: not what is measured here.)"""
    attempt = (await attempts_of(flow, inbox_id))[0]
    paths = [(c["method"], httpx.URL(c["url"]).path) for c in attempt.outbound_calls or []]
    return [_pattern(method, path) for method, path in paths if path.startswith("/ghl/")]


async def advances_reading_ghl(flow: FlowKit) -> list[str]:
    """The cause types of the `order.advance` events whose first attempt made GHL requests."""
    return [
        advance.payload["cause"]["type"]
        for advance in await advance_events(flow)
        if await ghl_calls_of(flow, advance.id)
    ]


async def run_with_webhooks(flow: FlowKit, order: dict[str, Any], when: str) -> int:
    """The order's `order.created` and every GHL webhook it causes, delivered `when`, run by a
    worker until they and their advances are finished; the order event's inbox id."""
    assert flow.transport is not None
    sandbox = flow.transport.routes[SANDBOX_HOST]
    deliverer = _Deliverer(flow, sandbox, _DUE[when])
    deliverer.sent = len(flow.sb.outbox.deliveries)  # earlier orders' webhooks were delivered
    flow.transport.routes[SANDBOX_HOST] = deliverer
    try:
        async with flow.running_worker():
            created_id = await flow.deliver_order("order.created", order)
            (created,) = await flow.wait_finished(created_id)
            assert created.status == EventStatus.DONE, created.last_error
            await deliverer.deliver_recorded()  # the rest (all of them, when late)
            webhooks = await flow.wait_finished(*deliverer.inbox_ids)
            advances = await wait_advances_finished(flow)
    finally:
        flow.transport.routes[SANDBOX_HOST] = sandbox
    assert {e.type for e in webhooks} >= {"InvoicePaid", "OrderCreate", "OrderStatusUpdate"}
    assert {e.status for e in [*webhooks, *advances]} == {EventStatus.DONE}
    return created_id


def assert_synced_from_ghl(flow: FlowKit, wizehire_order_id: str) -> None:
    """Wizehire got what GHL holds: the transactions, the amount, paid; one of each in GHL."""
    assert_one_of_each(flow, wizehire_order_id)
    (ghl_order,) = flow.orders()
    body = flow.order_syncs(wizehire_order_id)[-1]["body"]
    assert body["ghl_transaction_ids"] == [t["_id"] for t in flow.transactions(ghl_order["_id"])]
    assert (body["amount_paid"], body["amount_refunded"]) == ("149.00", "0.00")


FIVE = [
    "POST /contacts/upsert",
    "POST /invoices/",
    "POST /invoices/{id}/record-payment",
    "GET /payments/transactions",  # the invoice's order and the money on it
    "POST /payments/orders/{id}/fulfillments",
]  # and no refresh after it


@pytest.mark.parametrize("when", ["early", "mid_flow"])
async def test_a_new_order_costs_five_ghl_requests_with_its_webhooks(
    flow: FlowKit, when: str
) -> None:
    order = flow.order()

    created = await run_with_webhooks(flow, order, when)

    assert await ghl_calls_of(flow, created) == FIVE
    assert len(await advance_events(flow)) == 3  # InvoicePaid, OrderCreate, OrderStatusUpdate
    assert await advances_reading_ghl(flow) == []
    assert_synced_from_ghl(flow, order["id"])
    record = await flow.sync_order(order["id"])
    assert record is not None and record.own_payment_state_at is not None


async def test_late_webhooks_of_the_own_payment_cost_nothing_a_late_status_report_reads_ghl(
    flow: FlowKit,
) -> None:
    order = flow.order()

    created = await run_with_webhooks(flow, order, "late")

    assert await ghl_calls_of(flow, created) == FIVE
    # Only the status report, received after the state was stored, looks again: a refresh.
    assert await advances_reading_ghl(flow) == ["OrderStatusUpdate"]
    (status_report,) = [
        a for a in await advance_events(flow) if a.payload["cause"]["type"] == "OrderStatusUpdate"
    ]
    assert await ghl_calls_of(flow, status_report.id) == [
        "GET /payments/orders/{id}",
        "GET /payments/transactions",
        "GET /payments/transactions/{id}",
    ]
    assert_synced_from_ghl(flow, order["id"])


class TestMatchOrInvoice:
    @pytest.fixture
    def flow_mapping(self) -> Mapping:
        return default_mapping(strategy="match_or_invoice")

    async def test_a_new_customer_has_no_orders_to_match_a_known_one_is_matched_first(
        self, flow: FlowKit
    ) -> None:
        first = flow.order()
        created = await run_with_webhooks(flow, first, "early")
        assert await ghl_calls_of(flow, created) == FIVE  # no match: GHL made the contact now
        assert_synced_from_ghl(flow, first["id"])

        second = flow.order()  # the same customer: GHL knows the contact, it may have orders
        created = await run_with_webhooks(flow, second, "early")

        assert await ghl_calls_of(flow, created) == [
            "POST /contacts/upsert",
            "GET /payments/orders",  # the match: the strategy's own lookup
            "POST /invoices/",
            "POST /invoices/{id}/record-payment",
            "GET /payments/transactions",
            "POST /payments/orders/{id}/fulfillments",
        ]
        assert await advances_reading_ghl(flow) == []
        one, two = await flow.sync_order(first["id"]), await flow.sync_order(second["id"])
        assert one is not None and two is not None and one.ghl_order_id != two.ghl_order_id


# --- the rule itself ------------------------------------------------------------------------------


def _record(**values: Any) -> SyncOrder:
    now = utcnow()
    defaults: dict[str, Any] = dict(
        id=1,
        wizehire_order_id="wh_1",
        account_id="a",
        ghl_location_id="loc",
        wizehire_status="paid",
        order_snapshot={},
        currency="USD",
        amount=Decimal("149.00"),
        ghl_invoice_id="inv1",
        ghl_order_id="ord1",
        ghl_fulfillment_id="ful1",
        payment_status="paid",
        amount_paid=Decimal("149.00"),
        amount_refunded=Decimal(0),
        ghl_checked_at=now - timedelta(seconds=1),
        own_payment_state_at=now,
    )
    return SyncOrder(**{**defaults, **values})


def _news(
    kind: str, object_id: str, status: str | None = None, payment_status: str | None = None
) -> dict[str, Any]:
    return {"kind": kind, "id": object_id, "status": status, "payment_status": payment_status}


@pytest.mark.parametrize(
    ("event_type", "news", "received_late", "known"),
    [
        ("InvoicePaid", _news("invoice", "inv1", "paid"), True, True),
        ("InvoicePartiallyPaid", _news("invoice", "inv1", "partially_paid"), True, True),
        ("InvoicePaid", _news("invoice", "other", "paid"), False, False),
        ("OrderCreate", _news("order", "ord1", "pending", "unpaid"), True, True),
        ("OrderCreate", _news("order", "other", "pending"), False, False),
        ("OrderStatusUpdate", _news("order", "ord1", "completed", "paid"), False, True),
        ("OrderStatusUpdate", _news("order", "ord1", "completed"), False, True),
        ("OrderStatusUpdate", _news("order", "ord1", "completed", "paid"), True, False),
        ("OrderStatusUpdate", _news("order", "ord1", "completed", "refunded"), False, False),
        ("OrderStatusUpdate", _news("order", "ord1", "cancelled"), False, False),
        ("InvoiceVoid", _news("invoice", "inv1", "void"), False, False),
    ],
)
def test_news_already_stored(
    event_type: str, news: dict[str, Any], received_late: bool, known: bool
) -> None:
    record = _record()
    assert record.own_payment_state_at is not None
    received = record.own_payment_state_at + timedelta(seconds=1 if received_late else -1)
    assert news_already_stored(record, event_type, news, received) is known


def test_news_is_not_stored_without_a_read_or_before_the_invoice_is_paid() -> None:
    late = utcnow() + timedelta(seconds=5)
    paid = _news("invoice", "inv1", "paid")
    assert not news_already_stored(_record(ghl_checked_at=None), "InvoicePaid", paid, late)
    part_paid = _record(payment_status="pending", amount_paid=Decimal("49.00"))
    assert not news_already_stored(part_paid, "InvoicePaid", paid, late)
    refunded = _record(payment_status="partially_refunded", amount_refunded=Decimal("49.00"))
    assert news_already_stored(refunded, "InvoicePaid", paid, late)
    # An order whose state a refresh read (not the flow's own payment): its creation reads GHL.
    created = _news("order", "ord1", "pending")
    assert not news_already_stored(_record(own_payment_state_at=None), "OrderCreate", created, late)
    assert not news_already_stored(_record(), "OrderCreate", None, late)
