"""One reconciliation run, a page at a time, resumable from where it stopped.

Phases (the run's `state` says which one, and where in it):
1. `ghl_orders`: each mapped location's GHL orders of the window -> the run's working set
   (`reconciliation_ghl_orders`), a page per transaction;
2. `ghl_transactions`: two streams at once, each committing its own pages and cursor:
   - each location's transactions since the window opened -> onto the orders of the working set
     they belong to (by order id, or by the invoice the order came from);
   - Wizehire's orders, a page at a time: matched (`matching.py`), categorised
     (`categorise.py`), written as items with the GHL orders they paired marked claimed, and the
     heal queued (`heal.py`), all in the page's one transaction with the cursor to the next page.
   A Wizehire order paired with a GHL order whose transactions may not all be read yet is
   written `pending` (with the order as Wizehire listed it) and settled as soon as they are:
   GHL lists transactions newest first, so once a location's list has reached time T every order
   created after T (less `SETTLE_MARGIN`) has all of its transactions;
3. `settle`: the pending items left once every transaction is read;
4. `unclaimed`: the GHL orders nothing paired that no sync record points to either and whose
   items are mapped -> `missing_in_wizehire`;
then the working set is dropped and the counts are taken from the items.

Why two streams: reading GHL is bounded by the rate limit (the run's share of 100 requests per
10 s), comparing Wizehire's orders by the process's CPU and the database. One after the other,
a run took the GHL floor PLUS the comparison; together it takes about the larger of the two.
Wizehire lists orders oldest change first and GHL transactions newest first, so without the
pending items the comparison could not start before the last transaction page.

Memory is one page of each stream, whatever the number of orders: the working set and the
pending items are in the database and every pairing is an indexed look-up. A page's writes and
its cursor commit together (`_commit`, one at a time, so a stream's position is never stored
before its page is), so a run resumed by another process (`runs.py`) continues after the last
page each stream committed and writes no item twice (items are also unique per run and order).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync.db import reconcile_repo as repo
from wizesync.db.reconcile_models import PENDING, ReconciliationGhlOrder, ReconciliationRun
from wizesync.ghl.client import GhlClient
from wizesync.mapping import Mapping
from wizesync.reconcile import reading
from wizesync.reconcile.categorise import (
    GhlSide,
    Verdict,
    WizehireSide,
    categorise,
    ghl_figures,
    ghl_state,
)
from wizesync.reconcile.heal import HEALABLE, queue_heal
from wizesync.reconcile.matching import Link, link_for, resolve_links, side_of
from wizesync.wizehire.client import WizehireClient
from wizesync.wizehire.models import ListedOrder, as_utc

log = logging.getLogger(__name__)

PHASES = ("ghl_orders", "ghl_transactions", "settle", "unclaimed", "finish")
WIZEHIRE_PAGE_SIZE = 200
UNCLAIMED_BATCH = 100
SETTLE_BATCH = 200
SETTLE_STEPS = 16
GHL_PAGES_AHEAD = 4
# How much earlier than its order a transaction of it may be created (an order GHL makes from a
# paid invoice comes a moment after the payment): orders are settled only this far behind the
# point the transactions list has reached.
SETTLE_MARGIN = timedelta(minutes=10)

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
    # One writing step at a time (`_writing`).
    _commit_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    # Set by every commit of a stream: the settler looks for items it can settle.
    _progressed: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    async def run(self, run: ReconciliationRun, locations: list[str]) -> dict[str, int]:
        """Carry the run to its end (from its stored state); the final counts."""
        self.run_id = run.id
        self.since = as_utc(run.since)
        self.until = as_utc(run.until)
        self.heal = bool(run.heal)
        self.state: dict[str, Any] = dict(run.state or {})
        self.state.setdefault("locations", locations)
        self.state.setdefault("phase", PHASES[0])
        if self.state["phase"] == "wizehire":
            # Stored by a version that compared only after reading every transaction.
            self.state.update(phase="ghl_transactions", transactions_read=True)
        async with self.sessionmaker() as session:
            self.counts = await repo.count_items(session, run.id)
        if self.state["phase"] == "ghl_orders":
            await self._ghl_orders()
        if self.state["phase"] == "ghl_transactions":
            await self._transactions_and_wizehire()
        if self.state["phase"] == "settle":
            await self._settle(everything=True)
            await self._next_phase("unclaimed")
        if self.state["phase"] == "unclaimed":
            await self._unclaimed()
        async with self.sessionmaker.begin() as session:
            await repo.drop_staged(session, run.id)
            counts = await repo.count_items(session, run.id)
        return counts

    # --- phases ----------------------------------------------------------------------------------

    async def _ghl_orders(self) -> None:
        async def fetch(location_id: str, offset: int) -> reading.GhlPage:
            return await reading.ghl_orders_page(
                self.ghl, location_id, self.since, self.until, offset, self.ghl_page_size
            )

        async def write(session: AsyncSession, location_id: str, rows: Any) -> dict[str, Any]:
            await repo.stage_ghl_orders(session, self.run_id, rows)
            return {}

        await self._ghl_pages("ghl_orders", fetch, write)
        async with self.sessionmaker.begin() as session:
            await repo.analyze_working_set(session)
        await self._next_phase("ghl_transactions")

    async def _transactions_and_wizehire(self) -> None:
        """The transactions stream and the Wizehire stream side by side, and the settler
        settling pending items as the transactions list moves on; then the `settle` phase."""
        streams = []
        if not self.state.get("transactions_read"):
            streams.append(self._ghl_transactions())
        if not self.state.get("wizehire_read"):
            streams.append(self._wizehire())
        await _together([*streams, self._settler()], until_done=len(streams))
        await self._next_phase("settle")

    async def _ghl_transactions(self) -> None:
        async def fetch(location_id: str, offset: int) -> reading.GhlPage:
            return await reading.ghl_transactions_page(
                self.ghl, location_id, self.since, offset, self.ghl_page_size
            )

        await self._ghl_pages("ghl_transactions", fetch, self._attach_transactions)
        async with self._writing() as session:
            await self._commit(session, {"transactions_read": True})

    async def _ghl_pages(
        self,
        phase: str,
        fetch: Callable[[str, int], Awaitable[reading.GhlPage]],
        write: Callable[[AsyncSession, str, Any], Awaitable[dict[str, Any]]],
    ) -> None:
        """Every location's pages of one GHL list, each written with the offset of the next in
        one transaction, in order (`write` returns more state to store with it).

        Once GHL has said how long the list is, up to `GHL_PAGES_AHEAD` pages are requested at
        once: the budget lets a burst through and then a request every 1/9 s or so, and one
        request at a time, each waiting for the one before to be answered, parsed and written,
        used it at about half that. Never a page past the list's end."""
        locations: list[str] = self.state["locations"]
        size = self.ghl_page_size
        done = 0
        while self.state.get("loc", 0) < len(locations):
            location_id = locations[self.state.get("loc", 0)]
            offset = self.state.get("offset", 0)
            ahead: deque[asyncio.Task[reading.GhlPage]] = deque()
            asked, total = offset, None
            try:
                while True:
                    while not ahead or (
                        total is not None and asked < total and len(ahead) < GHL_PAGES_AHEAD
                    ):
                        ahead.append(asyncio.ensure_future(fetch(location_id, asked)))
                        asked += size
                    page = await ahead.popleft()
                    total = page.total
                    done += page.read
                    async with self._writing() as session:
                        changes = await write(session, location_id, page.rows)
                        if page.more:
                            changes["offset"] = offset + page.read
                        else:
                            changes.update(
                                loc=self.state.get("loc", 0) + 1, offset=0, watermark=None
                            )
                        await self._commit(session, changes)
                    offset += page.read
                    self._tell(phase, done, None)
                    if not page.more:
                        break
                    if page.read != size:  # cannot be (more means a full page): ask afresh
                        await _cancel(ahead)
                        asked = offset
            finally:
                await _cancel(ahead)

    async def _attach_transactions(
        self, session: AsyncSession, location_id: str, transactions: list[Any]
    ) -> dict[str, Any]:
        """Onto their staged orders; the state change: how far back the list has reached."""
        by_entity: dict[str, list[Any]] = {}
        for txn in transactions:
            if txn.entity_id:
                by_entity.setdefault(txn.entity_id, []).append(txn)
            if txn.invoice_id and txn.invoice_id != txn.entity_id:
                by_entity.setdefault(txn.invoice_id, []).append(txn)
        changes = {"watermark": self._watermark_after(transactions)}
        if not by_entity:
            return changes
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
            updates.append({"id": row.id, "transactions": docs})
        await repo.set_ghl_order_payments(session, updates)
        return changes

    def _watermark_after(self, transactions: list[Any]) -> str | None:
        """The oldest creation time the location's list has reached, as long as the pages come
        newest first as GHL documents; "unordered" (nothing settles before the end) otherwise."""
        mark = self.state.get("watermark")
        if mark == "unordered":
            return mark
        times = [as_utc(t.created_at) for t in transactions if t.created_at is not None]
        if not times:
            return mark
        if mark is not None and max(times) > datetime.fromisoformat(mark):
            log.warning(
                "GHL transactions not listed newest first: pending orders settle at the end",
                extra={"run_id": self.run_id},
            )
            return "unordered"
        return min(times).isoformat()

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
        if not self.state.get("wizehire_read"):  # an empty list: no page said it was the last
            async with self._writing() as session:
                await self._commit(session, {"wizehire_read": True})

    async def _wizehire_page(self, orders: list[ListedOrder], next_cursor: str | None) -> None:
        latest: dict[str, ListedOrder] = {}
        for order in orders:
            if reading.in_window(order.created_at, self.since, self.until):
                latest[order.id] = order
        window = list(latest.values())
        keys = [f"wh:{o.id}" for o in window]
        # How far the transactions are read, taken BEFORE the staged orders are: what they say
        # then is at least what was committed up to here.
        state = dict(self.state)
        async with self._reading() as session:
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
            if link.staged is not None:
                claims.append(link.staged.id)
                if not _complete(link.staged, state):
                    items.append(self._pending(key, order, link))
                    continue
            side, how = await self._ghl_side(link)
            item, heal = self._settled(key, order, side, how)
            items.append(item)
            if heal is not None:
                heals.append((key, order, heal))
        async with self._writing() as session:
            await repo.add_items(session, self.run_id, items)
            await repo.claim_staged(session, claims)
            for key, order, category in heals:
                await queue_heal(session, self.run_id, key, order, category)
            changes: dict[str, Any] = {
                "cursor": next_cursor,
                "wizehire_done": self.state.get("wizehire_done", 0) + len(orders),
            }
            if next_cursor is None:
                changes["wizehire_read"] = True
            await self._commit(session, changes, items)

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

    async def _settler(self) -> None:
        """Settle pending items as the transactions list moves on (cancelled when both streams
        are done: the `settle` phase takes what is left). A look costs a scan of the pending
        items, so it is taken each time the list has gone back another `SETTLE_STEPS`th of the
        window, not at every page."""
        last: tuple[int, int] | None = None
        span = (self.until - self.since) / SETTLE_STEPS
        while True:
            await self._progressed.wait()
            self._progressed.clear()
            reached = _reached(self.state)
            step = int((self.until - reached[1]) / span) if reached is not None else -1
            mark = (self.state.get("loc", 0), step)
            if mark != last:
                last = mark
                await self._settle(everything=False)

    async def _settle(self, *, everything: bool) -> None:
        """Pending items whose GHL order's transactions are all read (`everything`: all that are
        left) -> their category, a batch per transaction, heals queued with them."""
        settled = 0
        while True:
            read = self.state["locations"][: self.state.get("loc", 0)]
            reached = _reached(self.state)
            async with self._writing() as session:
                pending = await repo.pending_to_settle(
                    session,
                    self.run_id,
                    everything=everything or bool(self.state.get("transactions_read")),
                    read_locations=read,
                    reading=reached,
                    limit=SETTLE_BATCH,
                )
                if not pending:
                    return
                rows = await repo.staged_by_order_ids(
                    session,
                    self.run_id,
                    [(i.ghl_location_id or "", i.ghl_order_id or "") for i in pending],
                )
                updates: list[dict[str, Any]] = []
                for item in pending:
                    order = ListedOrder.model_validate(item.wizehire)
                    row = rows[(item.ghl_location_id or "", item.ghl_order_id or "")]
                    final, heal = self._settled(item.order_key, order, side_of(row), item.detail)
                    updates.append({"id": item.id, **final})
                    if heal is not None:
                        await queue_heal(session, self.run_id, item.order_key, order, heal)
                await repo.settle_items(session, updates)
                await self._commit(session, {}, updates)
            settled += len(updates)
            self._tell("settle", settled, None)

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
            async with self._writing() as session:
                await repo.add_items(session, self.run_id, items)
                await self._commit(session, {"after_id": rows[-1].id}, items)
            self._tell("unclaimed", done, None)
        await self._next_phase("finish")

    # --- plumbing --------------------------------------------------------------------------------

    def _pending(self, key: str, order: ListedOrder, link: Link) -> dict[str, Any]:
        """A Wizehire order waiting for its GHL order's transactions: the order as listed (its
        figures and a heal need it) and how it was paired; `_settle` fills in the rest."""
        assert link.staged is not None
        return {
            "order_key": key,
            "category": PENDING,
            "wizehire_order_id": order.id,
            "ghl_order_id": link.staged.ghl_order_id,
            "ghl_location_id": link.staged.location_id,
            "wizehire": order.model_dump(mode="json"),
            "ghl": repo.pending_ghl(link.staged.created_at),
            "detail": link.how,
            "healed": False,
        }

    def _settled(
        self, key: str, order: ListedOrder, side: GhlSide | None, how: str
    ) -> tuple[dict[str, Any], str | None]:
        """The order's item, and the category to heal (None: nothing to heal)."""
        wizehire = reading.wizehire_side(order)
        verdict = categorise(wizehire, side, self.mapping)
        assert verdict is not None  # a Wizehire order always gets a verdict
        healed = self.heal and verdict.category in HEALABLE
        return self._item(key, wizehire, side, verdict, how, healed), (
            verdict.category if healed else None
        )

    def _item(
        self,
        key: str,
        wizehire: WizehireSide,
        side: GhlSide | None,
        verdict: Verdict,
        how: str,
        healed: bool,
    ) -> dict[str, Any]:
        ghl = None
        if side is not None:
            ghl = ghl_figures(side, verdict.ghl_state or ghl_state(side, self.mapping))
        return {
            "order_key": key,
            "category": verdict.category,
            "wizehire_order_id": wizehire.order_id,
            "ghl_order_id": side.order_id if side else None,
            "ghl_location_id": side.location_id if side else None,
            "wizehire": wizehire.figures(),
            "ghl": ghl,
            "detail": f"{verdict.reason} ({how})",
            "healed": healed,
        }

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        """A session for one step's writes, ended by `_commit`. One step at a time: every
        commit stores the whole state, which must never carry another stream's position before
        that stream's page has committed; and SQLite has one writer anyway (every transaction
        is BEGIN IMMEDIATE: two steps each holding what the other waits for would deadlock,
        and one waiting on another sleeps in SQLite's busy handler)."""
        async with self._commit_lock, self.sessionmaker() as session:
            yield session

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncSession]:
        """A session that only reads: beside the other stream's steps on PostgreSQL; on SQLite,
        where it would hold the one write lock all the same, one of the steps."""
        bind = self.sessionmaker.kw.get("bind")
        if bind is not None and bind.dialect.name == "postgresql":
            async with self.sessionmaker() as session:
                yield session
        else:
            async with self._writing() as session:
                yield session

    async def _commit(
        self,
        session: AsyncSession,
        changes: dict[str, Any],
        items: list[dict[str, Any]] = (),  # type: ignore[assignment]
    ) -> None:
        """Commit the step's writes with the state `changes` (and the lease), then apply them
        here: `self.state` is always what was committed last."""
        state = {**self.state, **changes}
        counts = dict(self.counts)
        for item in items:
            if item["category"] != PENDING:
                counts[item["category"]] = counts.get(item["category"], 0) + 1
        saved = await repo.save_progress(
            session,
            self.run_id,
            owner=self.owner,
            state=state,
            counts=counts,
            lease_seconds=self.lease_seconds,
        )
        if not saved:
            raise LeaseLost(f"reconciliation run {self.run_id} is no longer ours")
        await session.commit()
        self.state, self.counts = state, counts
        self._progressed.set()

    async def _next_phase(self, phase: str) -> None:
        async with self._writing() as session:
            await self._commit(session, {"phase": phase, "loc": 0, "offset": 0, "watermark": None})

    def _tell(self, phase: str, done: int, total: int | None) -> None:
        if self.progress is not None:
            self.progress(phase, done, total)


def _complete(row: ReconciliationGhlOrder, state: dict[str, Any]) -> bool:
    """Are all of this staged order's transactions read, by the run's `state`?"""
    if state.get("transactions_read") or state["phase"] != "ghl_transactions":
        return True
    if row.location_id in state["locations"][: state.get("loc", 0)]:
        return True
    reached = _reached(state)
    return (
        reached is not None
        and row.location_id == reached[0]
        and row.created_at is not None
        and as_utc(row.created_at) >= reached[1]
    )


def _reached(state: dict[str, Any]) -> tuple[str, datetime] | None:
    """(the location whose transactions are being read, the creation time from which its
    orders have all of theirs), or None when no order of it is known complete yet."""
    locations: list[str] = state["locations"]
    at = state.get("loc", 0)
    mark = state.get("watermark")
    if at >= len(locations) or mark in (None, "unordered"):
        return None
    return locations[at], datetime.fromisoformat(mark) + SETTLE_MARGIN


async def _cancel(tasks: deque[asyncio.Task[Any]]) -> None:
    """Cancel requests no longer wanted, and wait for them to stop."""
    while tasks:
        task = tasks.popleft()
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def _together(coros: list[Coroutine[Any, Any, None]], *, until_done: int) -> None:
    """Run the coroutines at once until the first `until_done` of them have returned (the rest
    are then cancelled); the first failure cancels all and is raised as it is."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        waiting = set(tasks[:until_done])
        while waiting:
            done, _ = await asyncio.wait(
                waiting | set(tasks[until_done:]), return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
                waiting.discard(task)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
