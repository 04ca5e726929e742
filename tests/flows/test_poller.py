"""The poller end to end: payments whose webhook never came, refunds (GHL sends no webhook for
them), unknown orders, the per-location lease, and `/sync-status`."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import select

from tests.flows.conftest import LOCATION_ID, FlowKit
from tests.flows.support_payments import (
    advance_ghl_clock,
    applied_syncs,
    checkout,
    last_sync,
    pay_in_ghl,
    poller,
    refund_in_ghl,
    sync_bodies,
    synced_checkout,
)
from wizesync.db import poller_repo
from wizesync.db.sync_models import PollerState, UnmatchedGhlOrder
from wizesync.flows.payments.poller import Poller, PollResult


async def poller_row(flow: FlowKit) -> PollerState:
    async with flow.sessionmaker() as session:
        row = await poller_repo.get_state(session, LOCATION_ID)
    assert row is not None
    return row


async def test_payment_whose_webhook_never_came_is_synced_by_the_poller(flow: FlowKit) -> None:
    synced = await synced_checkout(flow, outcome="pending")
    await pay_in_ghl(flow, synced.ghl_order_id)  # GHL's OrderStatusUpdate is never delivered

    result = await poller(flow).poll_location(LOCATION_ID, force=True)

    assert result is not None and result.error is None, result
    (txn,) = flow.transactions(synced.ghl_order_id)
    body = last_sync(flow, synced.wizehire_order_id)
    assert (body["payment_status"], body["amount_paid"], body["ghl_transaction_ids"]) == (
        "paid",
        "149.00",
        [txn["_id"]],
    )
    row = await poller_row(flow)
    assert row.last_error is None and row.last_run_at is not None
    assert row.last_success_at is not None
    assert row.lease_owner is None  # given back
    assert row.transactions_cursor is not None
    assert row.last_counts is not None and row.last_counts["transactions"] >= 1
    assert row.last_counts["refreshed"] >= 1 and row.last_counts["errors"] == 0


async def test_second_poll_with_nothing_new_patches_nothing(flow: FlowKit) -> None:
    synced = await synced_checkout(flow, outcome="paid")
    before = len(flow.order_syncs(synced.wizehire_order_id))

    for _ in range(2):
        result = await poller(flow).poll_location(LOCATION_ID, force=True)
        assert result is not None and result.error is None, result

    assert len(flow.order_syncs(synced.wizehire_order_id)) == before


async def test_transactions_listed_again_unchanged_cost_no_refresh(flow: FlowKit) -> None:
    """The overlap lists a transaction for ten minutes; once its record was refreshed, it is
    read again only when GHL lists it differently (here with the recheck batch off, so only the
    listing decides)."""
    orders = [await synced_checkout(flow, outcome="paid") for _ in range(3)]
    first = await poller(flow, recheck_batch=0).poll_location(LOCATION_ID, force=True)
    assert first is not None and first.error is None
    assert sorted(first.refreshed) == sorted(o.sync_id for o in orders)
    reads = len(flow.ghl_requests("GET", "/payments/orders/*"))

    again = await poller(flow, recheck_batch=0).poll_location(LOCATION_ID, force=True)

    assert again is not None and again.error is None
    assert again.refreshed == [] and again.counts["unchanged"] == 3
    assert len(flow.ghl_requests("GET", "/payments/orders/*")) == reads
    # A refund changes the transaction's listing: that record, and only it, is read again.
    await refund_in_ghl(flow, orders[1].ghl_order_id, "49.00")
    third = await poller(flow, recheck_batch=0).poll_location(LOCATION_ID, force=True)
    assert third is not None and third.refreshed == [orders[1].sync_id]
    assert last_sync(flow, orders[1].wizehire_order_id)["amount_refunded"] == "49.00"


async def test_a_record_whose_refresh_failed_is_read_again_though_its_listing_is_unchanged(
    flow: FlowKit,
) -> None:
    synced = await synced_checkout(flow, outcome="pending")
    await pay_in_ghl(flow, synced.ghl_order_id)
    flow.fault(path=f"/ghl/payments/orders/{synced.ghl_order_id}", method="GET", status=422)
    failed = await poller(flow, recheck_batch=0).poll_location(LOCATION_ID, force=True)
    assert failed is not None and failed.counts["errors"] == 1
    flow.clear_faults()

    again = await poller(flow, recheck_batch=0).poll_location(LOCATION_ID, force=True)

    assert again is not None and again.refreshed == [synced.sync_id]
    assert last_sync(flow, synced.wizehire_order_id)["payment_status"] == "paid"


async def test_refund_made_in_ghl_long_after_payment_is_noticed(flow: FlowKit) -> None:
    synced = await synced_checkout(flow, outcome="paid")
    assert last_sync(flow, synced.wizehire_order_id)["payment_status"] == "paid"
    first = await poller(flow).poll_location(LOCATION_ID, force=True)
    assert first is not None and first.error is None
    # Hours later (far past the cursor's overlap): refunds change old transactions, which no
    # "created since" list shows.
    await advance_ghl_clock(flow, 6 * 3600)
    await refund_in_ghl(flow, synced.ghl_order_id, "49.00")

    await poller(flow).poll_location(LOCATION_ID, force=True)

    body = last_sync(flow, synced.wizehire_order_id)
    assert (body["payment_status"], body["amount_paid"], body["amount_refunded"]) == (
        "partially_refunded",
        "149.00",
        "49.00",
    )

    await refund_in_ghl(flow, synced.ghl_order_id)  # the rest
    await poller(flow).poll_location(LOCATION_ID, force=True)

    body = last_sync(flow, synced.wizehire_order_id)
    assert (body["payment_status"], body["amount_refunded"]) == ("refunded", "149.00")
    assert [b["payment_status"] for b in sync_bodies(flow, synced.wizehire_order_id)] == [
        "paid",
        "partially_refunded",
        "refunded",
    ]
    record = await flow.sync_order(synced.wizehire_order_id)
    assert record is not None and record.payment_status == "refunded"


async def test_order_nobody_knows_seen_by_the_poller_is_recorded_and_reported_once(
    flow: FlowKit,
) -> None:
    await synced_checkout(flow, outcome="paid")  # so the location has a sync record
    stranger = (await checkout(flow, outcome="paid"))["order"]["_id"]

    for _ in range(2):
        result = await poller(flow).poll_location(LOCATION_ID, force=True)
        assert result is not None and result.counts["unmatched"] == 1

    async with flow.sessionmaker() as session:
        (row,) = (await session.execute(select(UnmatchedGhlOrder))).scalars().all()
    assert row.ghl_order_id == stranger and row.last_event_type == "poller"
    await flow.send_notices()
    assert len(flow.slack.matching(f"GHL order {stranger} matches no")) == 1


async def test_unmatched_order_is_resolved_once_a_wizehire_order_takes_it(flow: FlowKit) -> None:
    await synced_checkout(flow, outcome="paid")
    bought = (await checkout(flow, outcome="paid"))["order"]
    await poller(flow).poll_location(LOCATION_ID, force=True)
    order = flow.order(ghl_order_id=bought["_id"])
    (event,) = await flow.process(await flow.deliver_order("order.created", order))
    assert event.last_error is None

    await poller(flow).poll_location(LOCATION_ID, force=True)

    async with flow.sessionmaker() as session:
        (row,) = (await session.execute(select(UnmatchedGhlOrder))).scalars().all()
    assert row.ghl_order_id == bought["_id"] and row.resolved_at is not None


async def test_a_failing_order_is_counted_and_the_others_still_synced(flow: FlowKit) -> None:
    broken = await synced_checkout(flow, outcome="pending")
    fine = await synced_checkout(flow, outcome="pending")
    await pay_in_ghl(flow, broken.ghl_order_id)
    await pay_in_ghl(flow, fine.ghl_order_id)
    flow.fault(path=f"/ghl/payments/orders/{broken.ghl_order_id}", method="GET", status=422)

    result = await poller(flow).poll_location(LOCATION_ID, force=True)

    assert result is not None and result.counts["errors"] == 1
    assert result.error is not None and "sync record" in result.error
    assert last_sync(flow, fine.wizehire_order_id)["payment_status"] == "paid"
    assert last_sync(flow, broken.wizehire_order_id)["payment_status"] == "pending"
    assert (await poller_row(flow)).last_error == result.error

    flow.clear_faults()
    again = await poller(flow).poll_location(LOCATION_ID, force=True)
    assert again is not None and again.error is None
    assert last_sync(flow, broken.wizehire_order_id)["payment_status"] == "paid"
    assert (await poller_row(flow)).last_error is None


async def test_ghl_down_keeps_the_cursor_and_records_the_error(flow: FlowKit) -> None:
    synced = await synced_checkout(flow, outcome="paid")
    await poller(flow).poll_location(LOCATION_ID, force=True)
    cursor = (await poller_row(flow)).transactions_cursor
    flow.fault(path="/ghl/payments/transactions", method="GET", status=401)

    result = await poller(flow).poll_location(LOCATION_ID, force=True)

    assert result is not None and result.error is not None
    row = await poller_row(flow)
    assert row.transactions_cursor == cursor and row.last_error == result.error
    assert row.lease_owner is None
    assert len(applied_syncs(flow, synced.wizehire_order_id)) == 1


class GatedPoller(Poller):
    """Holds its lease inside the run until the test lets it go."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def _poll(
        self, *args: object, **kwargs: object
    ) -> tuple[datetime | None, datetime | None]:
        self.entered.set()
        await self.gate.wait()
        return await super()._poll(*args, **kwargs)  # type: ignore[arg-type]


async def test_two_pollers_on_one_location_at_once_only_one_polls(flow: FlowKit) -> None:
    synced = await synced_checkout(flow, outcome="pending")
    await pay_in_ghl(flow, synced.ghl_order_id)
    first = GatedPoller(
        settings=flow.settings,
        sessionmaker=flow.sessionmaker,
        services=flow.services,
        owner="poller-a",
    )
    second = poller(flow, owner="poller-b")

    listed_before = len(flow.ghl_requests("GET", "/payments/transactions"))

    running = asyncio.create_task(first.poll_location(LOCATION_ID, force=True))
    await asyncio.wait_for(first.entered.wait(), 30)
    assert await second.poll_location(LOCATION_ID, force=True) is None
    assert len(flow.ghl_requests("GET", "/payments/transactions")) == listed_before
    first.gate.set()
    result = await asyncio.wait_for(running, 30)

    assert isinstance(result, PollResult) and result.error is None
    assert [b["payment_status"] for b in applied_syncs(flow, synced.wizehire_order_id)] == [
        "pending",
        "paid",
    ]
    # Once a poller has run, the location is not due again for another interval.
    assert await second.poll_location(LOCATION_ID) is None


async def test_many_processes_racing_for_one_lease_get_exactly_one(flow: FlowKit) -> None:
    async def take(owner: str) -> bool:
        async with flow.sessionmaker.begin() as session:
            state = await poller_repo.acquire_lease(
                session, LOCATION_ID, owner=owner, lease_seconds=60
            )
        return state is not None

    won = await asyncio.gather(*(take(f"p{n}") for n in range(8)))

    assert sum(won) == 1
    row = await poller_row(flow)
    assert row.lease_owner == f"p{won.index(True)}"


async def test_an_expired_lease_can_be_taken_over(flow: FlowKit) -> None:
    async with flow.sessionmaker.begin() as session:
        assert await poller_repo.acquire_lease(session, LOCATION_ID, owner="dead", lease_seconds=-1)
    async with flow.sessionmaker.begin() as session:
        assert await poller_repo.acquire_lease(
            session, LOCATION_ID, owner="alive", lease_seconds=60
        )
        assert not await poller_repo.extend_lease(
            session, LOCATION_ID, owner="dead", lease_seconds=60
        )


async def test_poll_all_polls_each_location_with_sync_records_once_per_interval(
    flow: FlowKit,
) -> None:
    await synced_checkout(flow, outcome="paid")
    p = poller(flow)

    results = await p.poll_all()
    again = await p.poll_all()

    assert [r.location_id for r in results] == [LOCATION_ID]
    assert again == []  # not due yet


async def test_sync_status_shows_the_poller(flow: FlowKit, client_factory) -> None:
    await synced_checkout(flow, outcome="paid")
    await poller(flow).poll_location(LOCATION_ID, force=True)
    client = await client_factory()

    answer = await client.get("/sync-status")

    assert answer.status_code == 200, answer.text
    part = answer.json()["poller"]
    (location,) = part["locations"]
    assert location["location_id"] == LOCATION_ID
    assert location["last_run_at"] and location["last_success_at"]
    assert location["transactions_cursor"]
    assert location["counts"]["refreshed"] >= 1
    assert location["last_error"] is None and location["polling_now"] is False
    assert part["unmatched_ghl_orders"] == 0


def test_overlap_default_is_ten_minutes() -> None:
    from wizesync.flows.payments.poller import OVERLAP

    assert OVERLAP == timedelta(minutes=10)


async def test_the_worker_runs_the_poller_beside_it_and_stops_it(flow: FlowKit) -> None:
    from tests.support.waiting import eventually
    from wizesync.inbox.worker import Worker

    synced = await synced_checkout(flow, outcome="pending")
    await pay_in_ghl(flow, synced.ghl_order_id)
    quick = poller(flow, interval_seconds=0.05)
    stopped = asyncio.Event()

    async def companion() -> None:
        try:
            await quick.run()
        finally:
            stopped.set()

    worker = Worker(
        settings=flow.settings,
        sessionmaker=flow.sessionmaker,
        registry=flow.registry,
        services=flow.services,
        companions=[companion],
    )
    worker.start()
    try:

        async def paid() -> bool | None:
            return last_sync(flow, synced.wizehire_order_id)["payment_status"] == "paid" or None

        await eventually(paid, what="the poller to sync the payment", timeout=30)
    finally:
        await worker.stop(grace_seconds=5)
    assert stopped.is_set()


async def test_the_app_starts_a_poller_with_its_in_process_worker(
    client_factory, monkeypatch
) -> None:
    import wizesync.app

    started = asyncio.Event()

    class FakePoller:
        async def run(self) -> None:
            started.set()
            await asyncio.Event().wait()

    monkeypatch.setattr(wizesync.app, "build_poller", lambda *_args: FakePoller())

    await client_factory()

    await asyncio.wait_for(started.wait(), 30)
