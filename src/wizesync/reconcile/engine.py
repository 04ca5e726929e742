"""One reconciliation run, a page at a time, resumable from where it stopped.

Phases (the run's `state` says which one, and where in it):
1. `ghl_orders`: each mapped location's GHL orders of the window -> the run's working set
   (`reconciliation_ghl_orders`), a page per transaction;
2. `ghl_transactions`: each location's transactions since the window opened -> onto the orders
   of the working set they belong to (by order id, or by the invoice the order came from);
3. `wizehire`: Wizehire's orders, a page at a time: matched (`matching.py`), categorised
   (`categorise.py`), written as items with the GHL orders they paired marked claimed, and the
   heal queued (`heal.py`), all in the page's one transaction with the cursor to the next page;
4. `unclaimed`: the GHL orders nothing paired that no sync record points to either and whose
   items are mapped -> `missing_in_wizehire`;
then the working set is dropped and the counts are taken from the items.

Memory is one page of each side, whatever the number of orders: the working set is in the
database and every pairing is an indexed look-up. A page's writes and its cursor commit together,
so a run resumed by another process (`runs.py`) continues after the last page it committed and
writes no item twice (items are also unique per run and order).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync.db import reconcile_repo as repo
from wizesync.db.reconcile_models import ReconciliationRun
from wizesync.ghl.client import GhlClient
from wizesync.mapping import Mapping
from wizesync.reconcile import reading
from wizesync.reconcile.categorise import GhlSide, Verdict, categorise, ghl_figures, ghl_state
from wizesync.reconcile.heal import HEALABLE, queue_heal
from wizesync.reconcile.matching import Link, link_for, resolve_links, side_of
from wizesync.wizehire.client import WizehireClient
from wizesync.wizehire.models import ListedOrder, as_utc

log = logging.getLogger(__name__)

PHASES = ("ghl_orders", "ghl_transactions", "wizehire", "unclaimed", "finish")
WIZEHIRE_PAGE_SIZE = 200
UNCLAIMED_BATCH = 100

# (phase, units done in the phase, total if known): the CLI's progress bar.
Progress = Callable[[str, int, int | None], None]


class LeaseLost(Exception):
    """Another process took the run over (our lease expired): stop, it carries on."""


@dataclass
class Engine:
    sessionmaker: async_sessionmaker[AsyncSession]
    ghl: GhlClient
    wizehire: WizehireClient
    mapping: Mapping
    owner: str
    lease_seconds: float
    progress: Progress | None = None
    ghl_page_size: int = reading.GHL_PAGE_SIZE
    wizehire_page_size: int = WIZEHIRE_PAGE_SIZE

    async def run(self, run: ReconciliationRun, locations: list[str]) -> dict[str, int]:
        """Carry the run to its end (from its stored state); the final counts."""
        self.run_id = run.id
        self.since = as_utc(run.since)
        self.until = as_utc(run.until)
        self.heal = bool(run.heal)
        self.state: dict[str, Any] = dict(run.state or {})
        self.state.setdefault("locations", locations)
        self.state.setdefault("phase", PHASES[0])
        async with self.sessionmaker() as session:
            self.counts = await repo.count_items(session, run.id)
        if self.state["phase"] == "ghl_orders":
            await self._ghl_orders()
        if self.state["phase"] == "ghl_transactions":
            await self._ghl_transactions()
        if self.state["phase"] == "wizehire":
            await self._wizehire()
        if self.state["phase"] == "unclaimed":
            await self._unclaimed()
        async with self.sessionmaker.begin() as session:
            await repo.drop_staged(session, run.id)
            counts = await repo.count_items(session, run.id)
        return counts

    # --- phases ----------------------------------------------------------------------------------

    async def _ghl_orders(self) -> None:
        async def fetch(location_id: str, offset: int) -> tuple[Any, int, bool]:
            page = await reading.ghl_orders_page(
                self.ghl, location_id, self.since, self.until, offset, self.ghl_page_size
            )
            return page.rows, page.read, page.more

        async def write(session: AsyncSession, location_id: str, rows: Any) -> None:
            await repo.stage_ghl_orders(session, self.run_id, rows)

        await self._ghl_pages("ghl_orders", fetch, write)
        await self._next_phase("ghl_transactions")

    async def _ghl_transactions(self) -> None:
        async def fetch(location_id: str, offset: int) -> tuple[Any, int, bool]:
            return await reading.ghl_transactions_page(
                self.ghl, location_id, self.since, offset, self.ghl_page_size
            )

        await self._ghl_pages("ghl_transactions", fetch, self._attach_transactions)
        await self._next_phase("wizehire")

    async def _ghl_pages(
        self,
        phase: str,
        fetch: Callable[[str, int], Awaitable[tuple[Any, int, bool]]],
        write: Callable[[AsyncSession, str, Any], Awaitable[None]],
    ) -> None:
        """Every location's pages of one GHL list, each written with the offset of the next in
        one transaction. The next page is requested as soon as this one says there is more, so
        the budget's wait and the request overlap the write (never a request more than needed)."""
        locations: list[str] = self.state["locations"]
        done = 0
        while self.state.get("loc", 0) < len(locations):
            location_id = locations[self.state.get("loc", 0)]
            offset = self.state.get("offset", 0)
            upcoming: asyncio.Task[Any] | None = asyncio.ensure_future(fetch(location_id, offset))
            try:
                while upcoming is not None:
                    items, read, more = await upcoming
                    upcoming = (
                        asyncio.ensure_future(fetch(location_id, offset + read)) if more else None
                    )
                    done += read
                    async with self.sessionmaker.begin() as session:
                        await write(session, location_id, items)
                        if more:
                            self.state["offset"] = offset + read
                        else:
                            self.state["loc"] = self.state.get("loc", 0) + 1
                            self.state["offset"] = 0
                        await self._save(session)
                    offset += read
                    self._tell(phase, done, None)
            finally:
                if upcoming is not None and not upcoming.done():
                    upcoming.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await upcoming

    async def _attach_transactions(
        self, session: AsyncSession, location_id: str, transactions: list[Any]
    ) -> None:
        by_entity: dict[str, list[Any]] = {}
        for txn in transactions:
            if txn.entity_id:
                by_entity.setdefault(txn.entity_id, []).append(txn)
            if txn.invoice_id and txn.invoice_id != txn.entity_id:
                by_entity.setdefault(txn.invoice_id, []).append(txn)
        if not by_entity:
            return
        rows = await repo.staged_for_transactions(
            session,
            self.run_id,
            location_id,
            order_ids=list(by_entity),
            invoice_ids=list(by_entity),
        )
        updates = []
        for row in rows:
            found = by_entity.get(row.ghl_order_id, []) + (
                by_entity.get(row.invoice_id, []) if row.invoice_id else []
            )
            if not found:
                continue
            known = {t["_id"]: t for t in (row.transactions or [])}
            for txn in found:
                known[txn.id] = reading.transaction_doc(txn)
            docs = sorted(known.values(), key=lambda t: (t.get("createdAt") or "", t["_id"]))
            state = ghl_state(replace(side_of(row), transactions=docs), self.mapping)
            updates.append(
                {
                    "id": row.id,
                    "transactions": docs,
                    "amount_refunded": state.amount_refunded or Decimal(0),
                }
            )
        await repo.set_ghl_order_payments(session, updates)

    async def _wizehire(self) -> None:
        done = self.state.get("wizehire_done", 0)
        pages = self.wizehire.iter_order_pages(
            self.since, cursor=self.state.get("cursor"), limit=self.wizehire_page_size
        )
        # The next page is fetched while this one is compared and written: the network wait
        # and the database work overlap (one page ahead: memory stays two pages).
        upcoming: asyncio.Task[Any] | None = asyncio.ensure_future(anext(pages, None))
        try:
            while upcoming is not None:
                page = await upcoming
                if page is None:
                    break
                upcoming = asyncio.ensure_future(anext(pages, None)) if page.next_cursor else None
                await self._wizehire_page(list(page.data), page.next_cursor)
                done += len(page.data)
                self._tell("wizehire", done, None)
        finally:
            if upcoming is not None and not upcoming.done():
                upcoming.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await upcoming
            await pages.aclose()  # type: ignore[attr-defined]  # an async generator
        await self._next_phase("unclaimed")

    async def _wizehire_page(self, orders: list[ListedOrder], next_cursor: str | None) -> None:
        latest: dict[str, ListedOrder] = {}
        for order in orders:
            if reading.in_window(order.created_at, self.since, self.until):
                latest[order.id] = order
        window = list(latest.values())
        keys = [f"wh:{o.id}" for o in window]
        async with self.sessionmaker() as session:
            records = await repo.sync_links_by_wizehire_ids(session, list(latest))
            links = [link_for(o, records.get(o.id), self.mapping) for o in window]
            await resolve_links(session, self.run_id, links)
            existing = await repo.existing_item_keys(session, self.run_id, keys)
        items: list[dict[str, Any]] = []
        heals: list[tuple[str, ListedOrder, str]] = []
        claims: list[int] = []
        for order, link, key in zip(window, links, keys, strict=True):
            if key in existing:
                continue
            side, how = await self._ghl_side(link)
            verdict = categorise(reading.wizehire_side(order), side, self.mapping)
            assert verdict is not None  # a Wizehire order always gets a verdict
            if link.staged is not None:
                claims.append(link.staged.id)
            healed = self.heal and verdict.category in HEALABLE
            items.append(self._item(key, order, side, verdict, how, healed))
            if healed:
                heals.append((key, order, verdict.category))
        async with self.sessionmaker.begin() as session:
            await repo.add_items(session, self.run_id, items)
            await repo.claim_staged(session, claims)
            for key, order, category in heals:
                await queue_heal(session, self.run_id, key, order, category)
            self.state["cursor"] = next_cursor
            if next_cursor is None:  # the last page: the next phase starts with its commit
                self.state.update(phase="unclaimed", loc=0, offset=0)
            self.state["wizehire_done"] = self.state.get("wizehire_done", 0) + len(orders)
            self._count(items)
            await self._save(session)

    async def _ghl_side(self, link: Link) -> tuple[GhlSide | None, str]:
        if link.staged is not None:
            return side_of(link.staged), link.how
        if link.ghl_order_id and link.location_id:
            side = await reading.ghl_order_alone(self.ghl, link.location_id, link.ghl_order_id)
            if side is None:
                return None, f"{link.how}; GHL has no order {link.ghl_order_id}"
            return side, f"{link.how} (read on its own: not among the window's GHL orders)"
        if link.invoice_id:
            return None, f"{link.how}: GHL has made no order from it in the window"
        return None, link.how

    async def _unclaimed(self) -> None:
        done = 0
        while True:
            async with self.sessionmaker() as session:
                rows = await repo.unclaimed_staged(
                    session,
                    self.run_id,
                    after_id=self.state.get("after_id", 0),
                    limit=UNCLAIMED_BATCH,
                )
                if not rows:
                    break
                linked: set[tuple[str, str]] = set()
                for location_id in {r.location_id for r in rows}:
                    mine = [r for r in rows if r.location_id == location_id]
                    orders, invoices = await repo.linked_ghl_orders(
                        session,
                        location_id,
                        order_ids=[r.ghl_order_id for r in mine],
                        invoice_ids=[r.invoice_id for r in mine if r.invoice_id],
                    )
                    linked |= {
                        (location_id, r.ghl_order_id)
                        for r in mine
                        if r.ghl_order_id in orders or r.invoice_id in invoices
                    }
                keys = [f"ghl:{r.location_id}:{r.ghl_order_id}" for r in rows]
                existing = await repo.existing_item_keys(session, self.run_id, keys)
            items = []
            for row, key in zip(rows, keys, strict=True):
                if (row.location_id, row.ghl_order_id) in linked or key in existing:
                    continue  # a sync record knows it: its Wizehire order is outside the window
                mapped = await reading.order_is_mapped(
                    self.ghl, row.location_id, row.ghl_order_id, self.mapping
                )
                side = side_of(row)
                verdict = categorise(None, side, self.mapping, ghl_mapped=mapped)
                if verdict is None:
                    continue  # no mapped item: not an order of this service
                items.append(
                    {
                        "order_key": key,
                        "category": verdict.category,
                        "wizehire_order_id": None,
                        "ghl_order_id": row.ghl_order_id,
                        "ghl_location_id": row.location_id,
                        "wizehire": None,
                        "ghl": ghl_figures(
                            side, verdict.ghl_state or ghl_state(side, self.mapping)
                        ),
                        "detail": verdict.reason,
                        "healed": False,
                    }
                )
            done += len(rows)
            async with self.sessionmaker.begin() as session:
                await repo.add_items(session, self.run_id, items)
                self.state["after_id"] = rows[-1].id
                self._count(items)
                await self._save(session)
            self._tell("unclaimed", done, None)
        await self._next_phase("finish")

    # --- plumbing --------------------------------------------------------------------------------

    def _item(
        self,
        key: str,
        order: ListedOrder,
        side: GhlSide | None,
        verdict: Verdict,
        how: str,
        healed: bool,
    ) -> dict[str, Any]:
        wizehire = reading.wizehire_side(order)
        ghl = None
        if side is not None:
            ghl = ghl_figures(side, verdict.ghl_state or ghl_state(side, self.mapping))
        return {
            "order_key": key,
            "category": verdict.category,
            "wizehire_order_id": order.id,
            "ghl_order_id": side.order_id if side else None,
            "ghl_location_id": side.location_id if side else None,
            "wizehire": wizehire.figures(),
            "ghl": ghl,
            "detail": f"{verdict.reason} ({how})",
            "healed": healed,
        }

    def _count(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            self.counts[item["category"]] = self.counts.get(item["category"], 0) + 1

    async def _save(self, session: AsyncSession) -> None:
        saved = await repo.save_progress(
            session,
            self.run_id,
            owner=self.owner,
            state=self.state,
            counts=dict(self.counts),
            lease_seconds=self.lease_seconds,
        )
        if not saved:
            raise LeaseLost(f"reconciliation run {self.run_id} is no longer ours")

    async def _next_phase(self, phase: str) -> None:
        self.state.update(phase=phase, loc=0, offset=0)
        async with self.sessionmaker.begin() as session:
            await self._save(session)

    def _tell(self, phase: str, done: int, total: int | None) -> None:
        if self.progress is not None:
            self.progress(phase, done, total)
