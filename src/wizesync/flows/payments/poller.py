"""The poller: what GHL never sends a webhook for (transactions, refunds, subscriptions), and
any order webhook GHL failed to deliver, found by reading GHL every `POLL_INTERVAL_SECONDS`.

Per location, under a lease in `poller_state` (one process polls a location at a time; a
location is polled at most once per interval whichever process gets there first):
1. transactions created since the cursor minus an overlap (late writes, clock skew) -> the sync
   records they belong to (order id, invoice source, subscription); orders nobody knows are
   recorded as unmatched (and reported once);
2. subscriptions created since their cursor -> the records of their orders;
3. records with a refund waiting for GHL to show it (or whose decided refund Wizehire has not
   acknowledged), every run;
4. a batch of records whose GHL side can still change, least recently checked first: GHL's lists
   filter by creation time only, so a refund of an old transaction is found only by re-reading.
Step 1 skips a transaction listed again exactly as a previous run listed it (same fields, same
sync record) once that run refreshed its record: the overlap lists each transaction for ten
minutes, and re-reading all of them every run spent the location's GHL budget on records nothing
had changed (a burst's transactions cost minutes of calls per run, and waiting refunds waited).
Every record found goes through `refresh_order_from_ghl` (the refresh GHL's webhooks lead to),
so Wizehire is patched only when something changed; a record the refresh leaves with a GHL order
but no fulfillment gets an `order.advance` queued on its order's line (advance.py).
Cursors move only after a run without errors in reading the lists; one record's failure is
counted and retried next run, not fatal.

Runs in the worker process (the in-process worker of the API, or `wizesync worker`) as one of
the Worker's companions; the first poll comes one interval after start.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync.config import Settings
from wizesync.db import poller_repo, refund_repo, sync_repo
from wizesync.db.base import utcnow
from wizesync.flows.payments.advance import Cause, queue_advance
from wizesync.flows.payments.refresh import refresh_order_from_ghl
from wizesync.flows.payments.unmatched import report_unmatched
from wizesync.flows.services import Services
from wizesync.ghl import models as m
from wizesync.ghl.errors import GhlError, GhlNeedsReauth
from wizesync.inbox.context import FlowContext, PermanentFailure, RetryLater
from wizesync.inbox.worker import new_worker_id

log = logging.getLogger(__name__)

OVERLAP = timedelta(minutes=10)


@dataclass
class PollResult:
    location_id: str
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    refreshed: list[int] = field(default_factory=list)
    # What the next run compares its listing with (poller_state.seen_transactions).
    seen_transactions: dict[str, Any] = field(default_factory=dict)


class LeaseLost(Exception):
    """Another poller took the location (our lease expired mid-run): stop, it carries on."""


class Poller:
    def __init__(
        self,
        *,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        services: Services,
        owner: str | None = None,
        interval_seconds: float | None = None,
        overlap: timedelta = OVERLAP,
        recheck_batch: int = 25,
        lease_seconds: float = 120.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.services = services
        # The refresh path's context (no event behind it) and the poller's own transactions.
        self.ctx = FlowContext(sessionmaker=sessionmaker, services=services)
        self.owner = owner or f"poller:{new_worker_id()}"
        self.interval = float(interval_seconds or settings.poll_interval_seconds)
        self.overlap = overlap
        self.recheck_batch = recheck_batch
        self.lease_seconds = lease_seconds
        self._sleep = sleep

    # --- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll every interval until cancelled (the Worker cancels its companions on stop)."""
        log.info("poller started", extra={"owner": self.owner, "interval": self.interval})
        while True:
            await self._sleep(self.interval * random.uniform(0.9, 1.1))  # noqa: S311
            try:
                await self.poll_all()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database away, a bug: log, try next interval
                log.warning("poll failed", exc_info=exc)

    async def poll_all(self, *, force: bool = False) -> list[PollResult]:
        """One pass over every location this process gets the lease of."""
        extra = [self.settings.ghl_location_id] if self.settings.ghl_location_id else []
        async with self.ctx.read() as session:
            locations = await poller_repo.locations_to_poll(session, extra)
        results = []
        for location_id in locations:
            result = await self.poll_location(location_id, force=force)
            if result is not None:
                results.append(result)
        return results

    # --- one location ----------------------------------------------------------------------------

    async def poll_location(self, location_id: str, *, force: bool = False) -> PollResult | None:
        """Poll one location if this process gets its lease (and it is due, unless `force`);
        None when another process holds it or polled it within the interval."""
        started = utcnow()
        due_before = None if force else started - timedelta(seconds=self.interval * 0.9)
        async with self.ctx.unit_of_work() as session:
            state = await poller_repo.acquire_lease(
                session,
                location_id,
                owner=self.owner,
                lease_seconds=self.lease_seconds,
                due_before=due_before,
            )
            if state is None:
                return None
            txn_cursor, sub_cursor = state.transactions_cursor, state.subscriptions_cursor
            seen = dict(state.seen_transactions or {})
        result = PollResult(location_id)
        finished = False
        try:
            cursors = await self._poll(location_id, txn_cursor, sub_cursor, seen, result)
            async with self.ctx.unit_of_work() as session:
                finished = await poller_repo.finish_run(
                    session,
                    location_id,
                    owner=self.owner,
                    started_at=started,
                    counts=result.counts,
                    error=result.error,
                    transactions_cursor=cursors[0],
                    subscriptions_cursor=cursors[1],
                    seen_transactions=result.seen_transactions,
                )
        except LeaseLost:
            log.warning("poller lost its lease mid-run", extra={"location_id": location_id})
            finished = True
        except Exception as exc:
            result.error = _summary(exc)
            log.warning(
                "poll of a location failed", exc_info=exc, extra={"location_id": location_id}
            )
            with contextlib.suppress(Exception):
                async with self.ctx.unit_of_work() as session:
                    finished = await poller_repo.finish_run(
                        session,
                        location_id,
                        owner=self.owner,
                        started_at=started,
                        counts=result.counts,
                        error=result.error,
                    )
        finally:
            if not finished:  # cancelled (shutdown) or the database away: free it now
                with contextlib.suppress(Exception):
                    async with self.ctx.unit_of_work() as session:
                        await poller_repo.release_lease(session, location_id, owner=self.owner)
        log.info(
            "location polled",
            extra={"location_id": location_id, "counts": result.counts, "error": result.error},
        )
        return result

    async def _poll(
        self,
        location_id: str,
        txn_cursor: datetime | None,
        sub_cursor: datetime | None,
        seen: dict[str, Any],
        result: PollResult,
    ) -> tuple[datetime | None, datetime | None]:
        ghl = self.services.ghl
        counts = result.counts
        async with self.ctx.read() as session:
            first = await poller_repo.earliest_record_at(session, location_id)
        fallback = first or utcnow()

        # 1. transactions since the cursor: new payments, renewals, missed order webhooks.
        since = (txn_cursor or fallback) - self.overlap
        txns = [t async for t in ghl.iter_transactions(location_id, start_at=since)]
        counts["transactions"] = len(txns)
        owners, unknown_orders = await self._records_for_transactions(location_id, txns)
        listed = {txn.id: [owners[txn.id], _fingerprint(txn)] for txn in txns if txn.id in owners}
        wanted = [entry[0] for txn_id, entry in listed.items() if seen.get(txn_id) != entry]
        counts["unchanged"] = len(listed) - len(wanted)
        new_txn_cursor = _latest([t.created_at for t in txns], txn_cursor)

        # 2. subscriptions since their cursor: tie new ones to their orders.
        since = (sub_cursor or fallback) - self.overlap
        subs = [s async for s in ghl.iter_subscriptions(location_id, start_at=since)]
        counts["subscriptions"] = len(subs)
        async with self.ctx.read() as session:
            by_order = await poller_repo.records_by_ghl_ids(
                session, location_id, order_ids=[s.entity_id for s in subs if s.entity_id]
            )
            by_sub = await poller_repo.records_by_subscription(session, location_id)
            for sub in subs:
                record_id = by_sub.get(sub.id) or by_order.get(sub.entity_id or "")
                if record_id is not None:
                    wanted.append(record_id)
            # 3. and 4. refunds waiting for GHL, then the least recently checked records.
            wanted += await poller_repo.records_with_open_refunds(session, location_id)
            # Refund decisions whose Wizehire PATCH failed: the refresh's settle re-sends them.
            wanted += await refund_repo.sync_orders_with_unsent_refunds(session, location_id)
            wanted += await poller_repo.records_to_recheck(
                session, location_id, limit=self.recheck_batch, exclude=wanted
            )
        new_sub_cursor = _latest([s.created_at for s in subs], sub_cursor)

        for order in unknown_orders:
            await self._unmatched(location_id, order)
        counts["unmatched"] = len(unknown_orders)
        await self._refresh_all(location_id, list(dict.fromkeys(wanted)), result)
        # A record whose refresh failed is not remembered: its transactions count as changed.
        refreshed = set(result.refreshed)
        result.seen_transactions = {
            txn_id: entry
            for txn_id, entry in listed.items()
            if entry[0] in refreshed or seen.get(txn_id) == entry
        }
        return new_txn_cursor, new_sub_cursor

    async def _records_for_transactions(
        self, location_id: str, txns: list[m.Transaction]
    ) -> tuple[dict[str, int], list[str]]:
        """The record each transaction belongs to (by transaction id), and order ids no record
        knows."""
        order_ids = [t.entity_id for t in txns if t.entity_type == "order" and t.entity_id]
        invoice_ids = [i for i in (_invoice_of(t) for t in txns) if i]
        async with self.ctx.read() as session:
            known = await poller_repo.records_by_ghl_ids(
                session, location_id, order_ids=order_ids, invoice_ids=invoice_ids
            )
            by_sub = await poller_repo.records_by_subscription(session, location_id)
        owners: dict[str, int] = {}
        unknown: list[str] = []
        for txn in txns:
            invoice_id = _invoice_of(txn)
            record_id = (
                (known.get(txn.entity_id or "") if txn.entity_type == "order" else None)
                or (known.get(invoice_id) if invoice_id else None)
                or by_sub.get(txn.subscription_id or "")
                or (by_sub.get(txn.entity_id or "") if txn.entity_type == "subscription" else None)
            )
            if record_id is not None:
                owners[txn.id] = record_id
            elif txn.entity_type == "order" and txn.entity_id and txn.entity_id not in unknown:
                unknown.append(txn.entity_id)
        return owners, unknown

    async def _refresh_all(
        self, location_id: str, record_ids: list[int], result: PollResult
    ) -> None:
        counts = result.counts
        counts.setdefault("refreshed", 0)
        counts.setdefault("errors", 0)
        # What an `order.advance` this run queues names as its cause.
        poll_id = f"poll:{location_id}:{int(utcnow().timestamp())}"
        for record_id in record_ids:
            async with self.ctx.unit_of_work() as session:
                if not await poller_repo.extend_lease(
                    session, location_id, owner=self.owner, lease_seconds=self.lease_seconds
                ):
                    raise LeaseLost(location_id)
            try:
                await refresh_order_from_ghl(self.ctx, record_id)
                await self._advance_if_unfinished(record_id, poll_id)
            except RetryLater as exc:
                if isinstance(exc.__cause__, GhlNeedsReauth):
                    raise  # every other record would fail the same way: end the run
                counts["errors"] += 1
                result.error = f"sync record {record_id}: {exc}"[:500]
            except (PermanentFailure, GhlError) as exc:
                counts["errors"] += 1
                result.error = f"sync record {record_id}: {exc}"[:500]
                log.warning(
                    "poller could not refresh an order",
                    extra={"sync_order_id": record_id, "error": str(exc)},
                )
            except Exception as exc:  # a bug in one record's path must not starve the others
                counts["errors"] += 1
                result.error = f"sync record {record_id}: {_summary(exc)}"[:500]
                log.error("poller refresh failed", exc_info=exc, extra={"sync_order_id": record_id})
            else:
                counts["refreshed"] += 1
                result.refreshed.append(record_id)

    async def _advance_if_unfinished(self, record_id: int, poll_id: str) -> None:
        """A record that has its GHL order but no fulfillment (the order GHL made from our paid
        invoice, adopted by this refresh because its webhooks were lost) gets an `order.advance`:
        the fulfillment is made in the order's own line, never here beside its events. Queued
        once per GHL order; the refresh itself stays here (no step of the order flow races it)."""
        async with self.ctx.unit_of_work() as session:
            record = await sync_repo.get(session, record_id)
            if (
                record is None
                or not record.ghl_order_id
                or record.ghl_fulfillment_id
                or record.wizehire_status == "cancelled"
            ):
                return
            cause = Cause(source="poller", event_id=poll_id, type="poll", received_at=utcnow())
            queued = await queue_advance(
                session, record, cause, event_id=f"advance:poller:{record.id}:{record.ghl_order_id}"
            )
        if queued is not None:
            log.info(
                "poller queued order.advance for an order without its fulfillment",
                extra={"sync_order_id": record_id, "ghl_order_id": record.ghl_order_id},
            )

    async def _unmatched(self, location_id: str, order_id: str) -> None:
        await report_unmatched(self.ctx, location_id, order_id, event_type="poller", snapshot=None)


def build_poller(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], services: Services
) -> Poller:
    return Poller(settings=settings, sessionmaker=sessionmaker, services=services)


def _invoice_of(txn: m.Transaction) -> str | None:
    """The invoice a transaction came from: `invoiceId` (detail) or its source (list view)."""
    if txn.invoice_id:
        return txn.invoice_id
    extra = txn.model_extra or {}
    if (txn.entity_source_type or "").lower() == "invoice" and extra.get("entitySourceId"):
        return str(extra["entitySourceId"])
    if txn.entity_source is not None and (txn.entity_source.type or "").lower() == "invoice":
        return txn.entity_source.id
    return None


def _fingerprint(txn: m.Transaction) -> str:
    """Every field of a transaction as GHL listed it, unknown ones included: any change (a
    refund's amountRefunded, a status, fields we do not read) makes another."""
    listed = json.dumps(txn.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(listed.encode()).hexdigest()[:24]


def _latest(moments: list[datetime | None], current: datetime | None) -> datetime | None:
    seen = [(m if m.tzinfo else m.replace(tzinfo=UTC)) for m in moments if m is not None]
    if current is not None:
        seen.append(current)
    return max(seen) if seen else None


def _summary(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
