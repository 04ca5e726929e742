"""Where the revenue figures come from: GHL itself, read through the GHL client.

Why GHL and not the service's own records (`db/sync_models.py`): the records are not equivalent.
They exist only for orders that came from Wizehire (a GHL checkout nobody linked has none, yet it
is revenue on a mapped location), they keep an order's paid and refunded totals but not each
transaction with its creation time (the series and the window need that), and they hold no
subscription renewals. GHL's transactions and subscriptions hold all of it. The records serve for
one thing only, where they are exactly equivalent: the SKUs of an order GHL made from the
service's own invoice.

What is read, per mapped location (concurrently across locations: GHL's budget is per location;
sequentially within one, through the shared rate limiter, so the live sync keeps its share):
- the transactions created in the window (`GET /payments/transactions`, `startAt`/`endAt` as
  whole days around the window, then cut exactly to `[since, until)` here), paged;
- every subscription of the location (`GET /payments/subscriptions`), paged: the active ones are
  the MRR, and a renewal transaction belongs to its subscription's order;
- for each distinct order with a captured payment, its lines as SKUs through the mapping: for an
  order GHL made from the service's own invoice, from its sync record (exactly the items the
  invoice was built from, see `_learn_known_orders`); for any other order (a GHL checkout), the
  order itself (`GET /payments/orders/{id}`: only the single-order answer has the items). An
  order's items do not change, so they are kept for the process's life (bounded);
- for an active subscription whose list entry has no schedule, the subscription itself (its
  interval), kept for an hour.
A whole location's reading is cached for `INSIGHTS_CACHE_SECONDS` per window, and two requests
for the same window share one reading.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from wizesync.ghl import models as m
from wizesync.ghl.client import GhlClient
from wizesync.ghl.errors import GhlNotFound
from wizesync.insights.figures import (
    ACTIVE_SUBSCRIPTION_STATUSES,
    ActiveSubscription,
    Line,
    Payment,
    is_captured,
)
from wizesync.mapping import Mapping

log = logging.getLogger(__name__)

ORDER_CACHE_SIZE = 20_000
# (location id, GHL order ids) -> {order id: the Wizehire items}, for orders made from our invoice
KnownItems = Callable[[str, list[str]], Awaitable[dict[str, list[dict[str, Any]]]]]
INTERVAL_CACHE_SECONDS = 3600.0
_RRULE_INTERVALS = {
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
    "yearly": "year",
    "day": "day",
    "week": "week",
    "month": "month",
    "year": "year",
}


def mapped_locations(mapping: Mapping) -> list[str]:
    """The GHL locations the mapping routes orders to: its default and every account's."""
    found = set(mapping.locations.accounts.values())
    if mapping.locations.default:
        found.add(mapping.locations.default)
    return sorted(found)


@dataclass(frozen=True)
class LocationFacts:
    location_id: str
    payments: list[Payment]
    subscriptions: list[ActiveSubscription]


class SkuResolver:
    """An order line -> the Wizehire SKU the mapping gives it: by price id, else by product id
    (the first SKU, alphabetically, when several share a product)."""

    def __init__(self, mapping: Mapping) -> None:
        self.by_price: dict[str, str] = {}
        self.by_product: dict[str, str] = {}
        for sku in sorted(mapping.products):
            product = mapping.products[sku]
            self.by_price.setdefault(product.price_id, sku)
            self.by_product.setdefault(product.product_id, sku)

    def lines(self, order: m.Order) -> tuple[Line, ...]:
        out = []
        for item in order.items:
            qty = Decimal(item.qty if item.qty is not None else 1)
            price = item.price
            sku = self.by_price.get(price.id) if price and price.id else None
            if sku is None:
                product_id = (item.product or {}).get("_id") or (item.product or {}).get("id")
                sku = self.by_product.get(str(product_id)) if product_id else None
            unit = price.amount if price and price.amount is not None else None
            out.append((sku, qty, unit))
        priced = all(unit is not None for _, _, unit in out)
        return tuple(
            Line(sku=sku, weight=(qty * unit) if priced and unit is not None else qty)
            for sku, qty, unit in out
        )


class GhlRevenueSource:
    def __init__(
        self,
        ghl: GhlClient,
        mapping: Mapping,
        *,
        cache_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        known_items: KnownItems | None = None,
    ) -> None:
        self.ghl = ghl
        self.known_items = known_items
        self.mapping = mapping
        self.skus = SkuResolver(mapping)
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._facts: dict[tuple[str, datetime, datetime], tuple[float, LocationFacts]] = {}
        self._locks: dict[tuple[str, datetime, datetime], asyncio.Lock] = {}
        self._orders: OrderedDict[tuple[str, str], tuple[Line, ...]] = OrderedDict()
        self._intervals: dict[tuple[str, str], tuple[float, tuple[str | None, int]]] = {}

    def locations(self) -> list[str]:
        return mapped_locations(self.mapping)

    async def read(self, since: datetime, until: datetime) -> list[LocationFacts]:
        """Every mapped location's facts for the window (cached)."""
        return list(
            await asyncio.gather(
                *(self.location_facts(loc, since, until) for loc in self.locations())
            )
        )

    async def location_facts(
        self, location_id: str, since: datetime, until: datetime
    ) -> LocationFacts:
        key = (location_id, since, until)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._facts.get(key)
            if cached is not None and self._clock() - cached[0] < self.cache_seconds:
                return cached[1]
            facts = await self._read_location(location_id, since, until)
            self._forget_stale()
            self._facts[key] = (self._clock(), facts)
            return facts

    def _forget_stale(self) -> None:
        now = self._clock()
        for key in [k for k, (at, _) in self._facts.items() if now - at >= self.cache_seconds]:
            self._facts.pop(key, None)
            lock = self._locks.get(key)
            if lock is not None and not lock.locked():
                self._locks.pop(key, None)

    async def _read_location(
        self, location_id: str, since: datetime, until: datetime
    ) -> LocationFacts:
        subscriptions = [s async for s in self.ghl.iter_subscriptions(location_id)]
        by_id: dict[str, m.Subscription] = {}
        for sub in subscriptions:
            by_id[sub.id] = sub
            if sub.subscription_id:
                by_id.setdefault(sub.subscription_id, sub)
        last_day = (until - timedelta(microseconds=1)).astimezone(UTC).date()
        found: list[tuple[m.Transaction, datetime, str | None]] = []
        async for txn in self.ghl.iter_transactions(
            location_id, start_at=since.astimezone(UTC).date(), end_at=last_day
        ):
            created = _aware(txn.created_at)
            if created is not None and since <= created < until:
                found.append((txn, created, _order_of(txn, by_id)))
        paid_orders = [order for txn, _, order in found if order and is_captured(txn.status)]
        await self._learn_known_orders(location_id, paid_orders)
        payments: list[Payment] = []
        for txn, created, order_id in found:
            lines: tuple[Line, ...] = ()
            if order_id is not None and is_captured(txn.status):
                lines = await self._order_lines(location_id, order_id)
            payments.append(
                Payment(
                    transaction_id=txn.id,
                    location_id=location_id,
                    order_id=order_id,
                    status=(txn.status or "").lower(),
                    currency=(txn.currency or "").upper(),
                    amount=txn.amount or Decimal(0),
                    refunded=txn.amount_refunded or Decimal(0),
                    created_at=created,
                    lines=lines,
                )
            )
        active = []
        for sub in subscriptions:
            status = (sub.status or "").lower()
            if status not in ACTIVE_SUBSCRIPTION_STATUSES:
                continue
            interval, count = await self._interval(location_id, sub)
            active.append(
                ActiveSubscription(
                    subscription_id=sub.id,
                    location_id=location_id,
                    status=status,
                    currency=(sub.currency or "").upper(),
                    amount=sub.amount or Decimal(0),
                    interval=interval,
                    interval_count=count,
                )
            )
        return LocationFacts(location_id=location_id, payments=payments, subscriptions=active)

    async def _learn_known_orders(self, location_id: str, order_ids: list[str]) -> None:
        """Lines of the orders GHL made from the service's own invoice, from the sync records:
        that invoice was built from the Wizehire order's items through the same mapping (one
        line per item, the SKU's price, the item's quantity and unit amount), so GHL's items map
        back to exactly those SKUs and amounts, without a call per order."""
        unknown = [o for o in dict.fromkeys(order_ids) if (location_id, o) not in self._orders]
        if not unknown or self.known_items is None:
            return
        for order_id, items in (await self.known_items(location_id, unknown)).items():
            lines: list[Line] = []
            for item in items:
                sku = item.get("sku")
                try:
                    qty = Decimal(str(item.get("quantity", 1)))
                    unit = Decimal(str(item.get("unit_amount", 0)))
                except ArithmeticError:
                    lines = []
                    break  # not a snapshot we can trust: read the order from GHL instead
                lines.append(
                    Line(sku=sku if sku in self.mapping.products else None, weight=qty * unit)
                )
            if lines:
                self._remember(location_id, order_id, tuple(lines))

    def _remember(self, location_id: str, order_id: str, lines: tuple[Line, ...]) -> None:
        self._orders[(location_id, order_id)] = lines
        while len(self._orders) > ORDER_CACHE_SIZE:
            self._orders.popitem(last=False)

    async def _order_lines(self, location_id: str, order_id: str) -> tuple[Line, ...]:
        key = (location_id, order_id)
        if key in self._orders:
            self._orders.move_to_end(key)
            return self._orders[key]
        try:
            order = await self.ghl.get_order(location_id, order_id)
        except GhlNotFound:
            log.warning(
                "insights: GHL order of a transaction not found; its revenue counts "
                "without a product",
                extra={"location_id": location_id, "ghl_order_id": order_id},
            )
            lines: tuple[Line, ...] = ()
        else:
            lines = self.skus.lines(order)
        self._remember(location_id, order_id, lines)
        return lines

    async def _interval(self, location_id: str, sub: m.Subscription) -> tuple[str | None, int]:
        found = subscription_interval(sub)
        if found[0] is not None:
            return found
        key = (location_id, sub.id)
        cached = self._intervals.get(key)
        if cached is not None and self._clock() - cached[0] < INTERVAL_CACHE_SECONDS:
            return cached[1]
        try:
            found = subscription_interval(await self.ghl.get_subscription(location_id, sub.id))
        except GhlNotFound:
            found = (None, 1)
        if found[0] is None:
            log.warning(
                "insights: GHL does not say the subscription's interval; counted as "
                "monthly in the MRR",
                extra={"location_id": location_id, "ghl_subscription_id": sub.id},
            )
        self._intervals[key] = (self._clock(), found)
        return found


def subscription_interval(sub: m.Subscription) -> tuple[str | None, int]:
    """(day|week|month|year, every n) from the schedule's rrule, else the recurring price; GHL
    documents neither shape, so both are read defensively. (None, 1) when neither says."""
    extra = sub.model_extra or {}
    rrule = (sub.schedule or {}).get("rrule") if isinstance(sub.schedule, dict) else None
    if isinstance(rrule, dict):
        interval = _RRULE_INTERVALS.get(str(rrule.get("intervalType", "")).lower())
        if interval:
            return interval, _count(rrule.get("interval"))
    product = extra.get("recurringProduct")
    price = product.get("price") if isinstance(product, dict) else None
    recurring = price.get("recurring") if isinstance(price, dict) else None
    if isinstance(recurring, dict):
        interval = _RRULE_INTERVALS.get(str(recurring.get("interval", "")).lower())
        if interval:
            return interval, _count(recurring.get("intervalCount"))
    return None, 1


def _order_of(txn: m.Transaction, subscriptions: dict[str, m.Subscription]) -> str | None:
    """The GHL order a transaction belongs to: its entity when that is an order; a renewal's
    subscription's order; none for a payment GHL tied to no order (e.g. of an invoice)."""
    entity_type = (txn.entity_type or "").lower()
    if entity_type == "order":
        return txn.entity_id
    if entity_type == "subscription" or (not entity_type and txn.subscription_id):
        sub = subscriptions.get(txn.entity_id or "") or subscriptions.get(txn.subscription_id or "")
        if sub is not None and (sub.entity_type or "order").lower() == "order":
            return sub.entity_id
    return None


def _count(value: object) -> int:
    try:
        return max(int(str(value)), 1)
    except (TypeError, ValueError):
        return 1


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
