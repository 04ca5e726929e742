"""Reconciliation storage: one run per fire time, leases, items unique per order, JSON shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync.db import reconcile_repo as repo
from wizesync.db.reconcile_models import CATEGORIES
from wizesync.reconcile.views import item_json, run_json

SINCE = datetime(2026, 11, 27, tzinfo=UTC)
UNTIL = datetime(2026, 12, 4, tzinfo=UTC)


async def _create(session: AsyncSession, **kw: object) -> int | None:
    args: dict[str, object] = {
        "trigger": "manual",
        "since": SINCE,
        "until": UNTIL,
        "heal": True,
        "owner": "w1",
        "lease_seconds": 60,
    }
    args.update(kw)
    return await repo.create_run(session, **args)  # type: ignore[arg-type]


async def test_one_run_per_fire_time(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    fire = datetime(2026, 12, 4, 2, tzinfo=UTC)
    async with sessionmaker.begin() as s:
        first = await _create(s, trigger="scheduled", fire_time=fire)
    async with sessionmaker.begin() as s:
        second = await _create(s, trigger="scheduled", fire_time=fire, owner="w2")
        manual_a = await _create(s)
        manual_b = await _create(s)
    assert first is not None and second is None
    assert manual_a is not None and manual_b is not None and manual_a != manual_b
    async with sessionmaker() as s:
        assert await repo.latest_fire_time(s) == fire
        assert [r.id for r in await repo.list_runs(s)] == [manual_b, manual_a, first]


async def test_an_expired_lease_is_taken_over_once(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as s:
        run_id = await _create(s, lease_seconds=-1)
    async with sessionmaker.begin() as s:
        taken = await repo.claim_abandoned_run(s, owner="w2", lease_seconds=60)
    async with sessionmaker.begin() as s:
        again = await repo.claim_abandoned_run(s, owner="w3", lease_seconds=60)
        assert not await repo.extend_lease(s, run_id, owner="w1", lease_seconds=60)
        assert await repo.extend_lease(s, run_id, owner="w2", lease_seconds=60)
    assert taken is not None and taken.id == run_id and taken.lease_owner == "w2"
    assert again is None


async def test_items_unique_per_order_and_counted(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as s:
        run_id = await _create(s)
        item = {
            "order_key": "wh:o1",
            "category": "amount_mismatch",
            "wizehire_order_id": "o1",
            "ghl_order_id": "g1",
            "ghl_location_id": "loc",
            "detail": "matched by sync record",
            "wizehire": {"amount": "10.00"},
            "ghl": {"amount": "12.00"},
            "healed": False,
        }
        assert await repo.add_items(s, run_id, [item]) == 1
        assert (
            await repo.add_items(
                s, run_id, [item, {**item, "order_key": "wh:o2", "category": "matched"}]
            )
            == 1
        )
    async with sessionmaker.begin() as s:
        counts = await repo.count_items(s, run_id)
        assert counts["amount_mismatch"] == 1 and counts["matched"] == 1
        assert list(counts) == list(CATEGORIES)
        items = await repo.list_items(s, run_id, category="amount_mismatch")
        assert [i.wizehire_order_id for i in items] == ["o1"]
        assert (
            await repo.list_items(s, run_id, after_id=items[0].id, category="amount_mismatch") == []
        )
        assert [i.wizehire_order_id for i in await repo.worst_items(s, run_id)] == ["o1"]
        assert await repo.finish_run(s, run_id, owner="w1", status="done", counts=counts)
    async with sessionmaker() as s:
        run = await repo.last_finished_run(s)
        assert run is not None and run.id == run_id
        body = run_json(run)
        assert body["status"] == "done" and body["window"] == {
            "since": "2026-11-27T00:00:00Z",
            "until": "2026-12-04T00:00:00Z",
        }
        assert body["counts"]["amount_mismatch"] == 1
        assert item_json(items[0]) == {
            "category": "amount_mismatch",
            "wizehire_order_id": "o1",
            "ghl_order_id": "g1",
            "ghl_location_id": "loc",
            "wizehire": {"amount": "10.00"},
            "ghl": {"amount": "12.00"},
            "detail": "matched by sync record",
            "healed": False,
        }


async def test_staged_ghl_orders_by_order_and_invoice(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as s:
        run_id = await _create(s)
        rows = [
            {
                "location_id": "loc",
                "ghl_order_id": f"g{i}",
                "invoice_id": f"inv{i}",
                "created_at": SINCE + timedelta(hours=i),
                "currency": "USD",
                "amount": 10,
                "payment_status": "paid",
                "fulfilled": False,
                "mapped": True,
            }
            for i in range(3)
        ]
        await repo.stage_ghl_orders(s, run_id, rows)
        await repo.stage_ghl_orders(s, run_id, rows[:1])  # a page read again after a resume
        found = await repo.staged_by_order_ids(s, run_id, [("loc", "g1"), ("loc", "nope")])
        by_inv = await repo.staged_by_invoice_ids(s, run_id, [("loc", "inv2")])
        assert list(found) == [("loc", "g1")] and by_inv[("loc", "inv2")].ghl_order_id == "g2"
        await repo.claim_staged(s, [found[("loc", "g1")].id])
        left = await repo.unclaimed_staged(s, run_id, after_id=0, limit=10)
        assert [r.ghl_order_id for r in left] == ["g0", "g2"]
        await repo.drop_staged(s, run_id)
        assert await repo.unclaimed_staged(s, run_id, after_id=0, limit=10) == []
