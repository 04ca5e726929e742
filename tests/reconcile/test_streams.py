"""GHL's transactions and Wizehire's orders are read at once: a Wizehire order whose GHL order's
transactions are not all read yet is held `pending` and settled once they are, to the category
it would have had; a run killed with items pending resumes and settles them, queueing each heal
once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.reconcile.conftest import ReconKit
from wizesync.db.models import InboxEvent
from wizesync.db.reconcile_models import PENDING, ReconciliationItem, ReconciliationRun
from wizesync.reconcile import reading
from wizesync.reconcile.heal import HEAL_TYPE


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs, no `except Exception` sees it."""


async def _planted(recon: ReconKit) -> dict[str, str]:
    """Orders of each kind a GHL order's transactions decide; {order id: expected category}."""
    matched = await recon.synced()
    refund = await recon.synced()
    status = await recon.synced()
    unfulfilled = await recon.synced()
    amount = await recon.synced()
    never_sent = recon.new_order()
    recon.seed_wizehire(never_sent)
    stray = recon.checkout()
    recon.refund_in_ghl((await recon.ghl_order_of(refund["id"]))["_id"], Decimal("49.00"))
    recon.change_wizehire(status["id"], sync={"payment_status": "pending"})
    recon.drop_fulfillment((await recon.ghl_order_of(unfulfilled["id"]))["_id"])
    recon.change_wizehire(
        amount["id"], amount="150.00", items=[{**amount["items"][0], "unit_amount": "150.00"}]
    )
    return {
        matched["id"]: "matched",
        refund["id"]: "refund_mismatch",
        status["id"]: "status_mismatch",
        unfulfilled["id"]: "fulfillment_missing",
        amount["id"]: "amount_mismatch",
        never_sent["id"]: "missing_in_ghl",
        f"ghl:{stray['_id']}": "missing_in_wizehire",
    }


async def _pending(recon: ReconKit, run_id: int) -> int:
    async with recon.flow.sessionmaker() as session:
        stmt = select(func.count()).where(
            ReconciliationItem.run_id == run_id, ReconciliationItem.category == PENDING
        )
        return int((await session.execute(stmt)).scalar_one())


async def _heals(recon: ReconKit) -> list[str]:
    async with recon.flow.sessionmaker() as session:
        stmt = select(InboxEvent.event_id).where(InboxEvent.type == HEAL_TYPE)
        return list((await session.execute(stmt)).scalars())


def _hold_transactions(monkeypatch: pytest.MonkeyPatch, then: Callable[[], Any]) -> asyncio.Event:
    """GHL's transactions list waits until the returned event is set (the Wizehire stream has
    read everything), then runs `then()` once before it is read."""
    read_all = asyncio.Event()
    original = reading.ghl_transactions_page
    done: list[bool] = []

    async def held(*args: Any, **kwargs: Any) -> reading.GhlPage:
        await read_all.wait()
        if not done:
            done.append(True)
            await then()
        return await original(*args, **kwargs)

    monkeypatch.setattr(reading, "ghl_transactions_page", held)
    return read_all


async def test_orders_compared_before_their_transactions_settle_to_the_same_category(
    recon: ReconKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = await _planted(recon)
    seen_pending: list[int] = []
    run_ids: list[int] = []

    async def count() -> None:
        seen_pending.append(await _pending(recon, run_ids[0]))

    read_all = _hold_transactions(monkeypatch, count)

    def progress(phase: str, done: int, total: int | None) -> None:
        if phase == "wizehire":
            read_all.set()  # one page holds every Wizehire order

    rec = recon.reconciler(progress=progress)
    run_ids.append(await rec.start(trigger="manual", window=recon.window(), heal=True))
    run = await rec.execute(run_ids[0])
    assert run is not None and run.status == "done", run and run.error

    # Every order the sync put in GHL waited for its transactions...
    assert seen_pending == [5]
    # ...and got the category the transactions give, exactly once.
    items = await recon.by_order(run.id)
    assert {k: i.category for k, i in items.items()} == expected
    assert await _pending(recon, run.id) == 0
    assert run.counts["refund_mismatch"] == 1 and sum(run.counts.values()) == len(expected)
    refund = items[next(k for k, v in expected.items() if v == "refund_mismatch")]
    assert refund.ghl is not None and refund.wizehire is not None
    assert refund.ghl["amount_refunded"] == "49.00" and refund.wizehire["amount"] == "149.00"
    assert "sync record" in refund.detail and refund.healed
    assert not items[next(k for k, v in expected.items() if v == "matched")].healed
    healable = [k for k, v in expected.items() if v != "matched" and not k.startswith("ghl:")]
    healable.remove(next(k for k, v in expected.items() if v == "amount_mismatch"))
    assert sorted(await _heals(recon)) == sorted(f"reconcile:{run.id}:wh:{k}" for k in healable)


async def test_a_run_killed_with_items_pending_resumes_and_settles_them_once(
    recon: ReconKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = await _planted(recon)

    async def die() -> None:
        raise Crash

    read_all = _hold_transactions(monkeypatch, die)

    def progress(phase: str, done: int, total: int | None) -> None:
        if phase == "wizehire":
            read_all.set()

    dying = recon.reconciler(lease_seconds=0.5, progress=progress)
    run_id = await dying.start(trigger="manual", window=recon.window(), heal=True)
    with pytest.raises(Crash):
        await dying.execute(run_id)
    async with recon.flow.sessionmaker() as session:
        run = await session.get(ReconciliationRun, run_id)
        assert run is not None and run.status == "running" and run.state is not None
        assert run.state["phase"] == "ghl_transactions" and run.state["wizehire_read"]
        assert not run.state.get("transactions_read")
    assert await _pending(recon, run_id) == 5
    # Pending items are never shown: only the order GHL has nothing of is listed.
    assert [i.category for i in await recon.items(run_id)] == ["missing_in_ghl"]

    monkeypatch.undo()
    await asyncio.sleep(0.6)
    other = recon.reconciler()
    assert await other.resume_abandoned() == [run_id]
    async with recon.flow.sessionmaker() as session:
        run = await session.get(ReconciliationRun, run_id)
        assert run is not None and run.status == "done", run and run.error
    items = await recon.by_order(run_id)
    assert {k: i.category for k, i in items.items()} == expected
    assert await _pending(recon, run_id) == 0
    heals = await _heals(recon)
    assert len(heals) == len(set(heals)) == 4  # missing, refund, status, fulfillment
