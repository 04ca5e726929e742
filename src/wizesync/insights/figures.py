"""Revenue figures from GHL payments: pure aggregation, no I/O. Every rule of the numbers is here.

Inputs are what `insights/source.py` read from GHL (a `Payment` per transaction of the window, an
`ActiveSubscription` per subscription GHL calls active) and what the last reconciliation run left
(`Unreconciled`). Output is one `RevenueReport` in ONE currency.

Rules
- **Captured**: a transaction counts when its status is `succeeded`, `refunded` or
  `partially_refunded` (money was taken; a refund does not undo the capture, it is counted
  apart). `failed`, `pending` and anything else never count.
- **Window**: `[since, until)` on the transaction's creation time, compared in UTC.
- **Currency**: only transactions in the answer's currency count; nothing is converted. The
  default currency is the one most captured transactions of the window use (ties: alphabetical);
  with none, the most used among active subscriptions; with none either, `USD`.
- **gross** = sum of the captured transactions' `amount`; **refunds** = sum of their
  `amountRefunded` (as GHL shows it now, whenever the refund happened: GHL keeps no refund date);
  **net** = gross - refunds; **orders** = the distinct GHL orders (location, order id) those
  transactions belong to (a renewal belongs to its subscription's order; a payment GHL has tied to
  no order, e.g. a partial invoice payment, counts in the money but in no order).
- **series**: the same by the transaction's creation time, in UTC periods: `day`, `week` (Monday
  00:00 UTC) or `month` (the 1st, 00:00 UTC), each labelled by its first day `YYYY-MM-DD`. Every
  period the window touches is listed, empty ones as zeros. An order paid in two periods counts
  in both.
- **by_product**: a payment is split over its order's lines by the Wizehire SKU the mapping gives
  each line (price id first, then product id); the split follows the lines' amounts (unit price x
  quantity; by quantity when GHL gives no prices), in the payment's smallest unit (0.01, or finer
  when GHL's amount is finer), the remainder cents going to the largest remainders, so the
  products always add up to the totals exactly. Lines no SKU maps to, and payments with no order,
  go under `sku: null`. An order counts once under each SKU it has.
- **by_location**: the same by GHL location.
- **subscriptions**: `active` = GHL subscriptions with status `active` in the currency (now, not
  in the window); `mrr` = their amounts normalised to a month: `month` x1/n, `year` x1/(12n),
  `week` x52/(12n), `day` x365/(12n) for a schedule of every n intervals; a subscription whose
  interval GHL does not tell counts as monthly. Summed exactly, rounded once to 0.01 (half up).
- **unreconciled**: the last finished reconciliation run's items that are not `matched`, with a
  side in the currency: how many, and their amount (GHL's side when in the currency, else
  Wizehire's). Not limited to the window: it is the last run's.
- Amounts are `Decimal` throughout and rendered with at least two decimals, never rounded
  (except the MRR, above).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext
from functools import lru_cache
from typing import Literal

Interval = Literal["day", "week", "month"]
INTERVALS: tuple[Interval, ...] = ("day", "week", "month")
CAPTURED_STATUSES = frozenset({"succeeded", "refunded", "partially_refunded"})
ACTIVE_SUBSCRIPTION_STATUSES = frozenset({"active"})
FALLBACK_CURRENCY = "USD"
CENT = Decimal("0.01")
ZERO = Decimal(0)

# A schedule interval -> how many of it make a month, as a fraction (numerator, denominator), so
# the one division happens last and `1200 a year` is exactly `100 a month`.
_PER_MONTH: dict[str, tuple[int, int]] = {
    "day": (365, 12),
    "week": (52, 12),
    "month": (1, 1),
    "year": (1, 12),
}


def is_captured(status: str | None) -> bool:
    return (status or "").lower() in CAPTURED_STATUSES


# --- inputs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One line of an order: the SKU the mapping gives it (None: unmapped) and its weight."""

    sku: str | None
    weight: Decimal


@dataclass(frozen=True)
class Payment:
    """A GHL transaction as the figures need it."""

    transaction_id: str
    location_id: str
    order_id: str | None
    status: str
    currency: str
    amount: Decimal
    refunded: Decimal
    created_at: datetime
    lines: tuple[Line, ...] = ()


@dataclass(frozen=True)
class ActiveSubscription:
    subscription_id: str
    location_id: str
    status: str
    currency: str
    amount: Decimal
    interval: str | None = None  # day | week | month | year; None: GHL does not say
    interval_count: int = 1


@dataclass(frozen=True)
class UnreconciledItem:
    category: str
    wizehire: dict[str, object] | None
    ghl: dict[str, object] | None


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime
    interval: Interval

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.since >= self.until:
            raise ValueError("since must be before until")

    def holds(self, moment: datetime) -> bool:
        return self.since <= moment < self.until


# --- outputs -------------------------------------------------------------------------------------


@dataclass
class Figures:
    gross: Decimal = ZERO
    refunds: Decimal = ZERO
    orders: set[tuple[str, str]] = field(default_factory=set)

    @property
    def net(self) -> Decimal:
        return self.gross - self.refunds

    def add(self, gross: Decimal, refunds: Decimal, order: tuple[str, str] | None) -> None:
        self.gross += gross
        self.refunds += refunds
        if order is not None:
            self.orders.add(order)


@dataclass
class RevenueReport:
    currency: str
    interval: Interval
    totals: Figures
    series: list[tuple[date, Figures]]
    by_product: list[tuple[str | None, Figures]]
    by_location: list[tuple[str, Figures]]
    active_subscriptions: int
    mrr: Decimal
    unreconciled_orders: int
    unreconciled_amount: Decimal


# --- the rules -----------------------------------------------------------------------------------


def choose_currency(
    payments: Iterable[Payment], subscriptions: Iterable[ActiveSubscription], window: Window
) -> str:
    """The most used currency: by captured transactions of the window, else by active
    subscriptions, else USD. Ties go to the alphabetically first."""
    counted = Counter(
        p.currency for p in payments if is_captured(p.status) and window.holds(p.created_at)
    )
    if not counted:
        counted = Counter(
            s.currency for s in subscriptions if s.status.lower() in ACTIVE_SUBSCRIPTION_STATUSES
        )
    if not counted:
        return FALLBACK_CURRENCY
    return min(counted, key=lambda c: (-counted[c], c))


def currencies_used(payments: Iterable[Payment], window: Window) -> list[str]:
    """Every currency a captured transaction of the window uses, most used first."""
    counted = Counter(
        p.currency for p in payments if is_captured(p.status) and window.holds(p.created_at)
    )
    return sorted(counted, key=lambda c: (-counted[c], c))


def period_start(moment: datetime, interval: Interval) -> date:
    day = moment.astimezone(UTC).date()
    if interval == "day":
        return day
    if interval == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_period(start: date, interval: Interval) -> date:
    if interval == "day":
        return start + timedelta(days=1)
    if interval == "week":
        return start + timedelta(weeks=1)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def periods(window: Window) -> list[date]:
    """The first day of every period the window touches, in order."""
    last = (window.until - timedelta(microseconds=1)).astimezone(UTC)
    start, end = period_start(window.since, window.interval), period_start(last, window.interval)
    out = []
    while start <= end:
        out.append(start)
        start = next_period(start, window.interval)
    return out


def count_periods(window: Window) -> int:
    """How many periods the series will have (cheap enough to check before reading GHL)."""
    return len(periods(window))


def split(amount: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """`amount` over `weights` in proportion, in the amount's smallest unit (0.01 or finer),
    summing exactly to `amount` (largest remainders get the leftover units; ties: first)."""
    if not weights:
        raise ValueError("nothing to split over")
    if len(weights) == 1:
        return [amount]
    if amount == 0:
        return [amount] * len(weights)
    return list(_split(amount, tuple(weights)))


@lru_cache(maxsize=4096)  # the same price over the same lines comes back again and again
def _split(amount: Decimal, weights: tuple[Decimal, ...]) -> tuple[Decimal, ...]:
    total = sum(weights, ZERO)
    if total <= 0:
        weights, total = (Decimal(1),) * len(weights), Decimal(len(weights))
    exponent = amount.as_tuple().exponent
    quantum = (
        CENT if not isinstance(exponent, int) or exponent >= -2 else Decimal(1).scaleb(exponent)
    )
    with localcontext() as ctx:
        ctx.prec = 50
        exact = [amount * w / total for w in weights]
        shares = [e.quantize(quantum, rounding=ROUND_DOWN) for e in exact]
        leftover = int((amount - sum(shares, ZERO)) / quantum)
        order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))
        for i in order[:leftover]:
            shares[i] += quantum
    return tuple(shares)


def monthly_amount(sub: ActiveSubscription) -> Decimal:
    """The subscription's amount per month, exact (not rounded)."""
    numerator, denominator = _PER_MONTH.get((sub.interval or "month").lower(), (1, 1))
    count = max(sub.interval_count, 1)
    with localcontext() as ctx:
        ctx.prec = 50
        return sub.amount * numerator / Decimal(denominator * count)


def unreconciled_total(items: Iterable[UnreconciledItem], currency: str) -> tuple[int, Decimal]:
    """(orders, amount) of the items not `matched` that have a side in `currency`."""
    orders, amount = 0, ZERO
    for item in items:
        if item.category == "matched":
            continue
        for side in (item.ghl, item.wizehire):
            if side and str(side.get("currency") or "").upper() == currency:
                orders += 1
                amount += _decimal(side.get("amount"))
                break
    return orders, amount


def revenue_report(
    payments: Iterable[Payment],
    subscriptions: Iterable[ActiveSubscription],
    unreconciled: tuple[int, Decimal],
    *,
    window: Window,
    currency: str,
) -> RevenueReport:
    currency = currency.upper()
    totals = Figures()
    series = {start: Figures() for start in periods(window)}
    by_product: dict[str | None, Figures] = {}
    by_location: dict[str, Figures] = {}
    for p in payments:
        if not (
            is_captured(p.status) and p.currency.upper() == currency and window.holds(p.created_at)
        ):
            continue
        order = (p.location_id, p.order_id) if p.order_id else None
        totals.add(p.amount, p.refunded, order)
        series[period_start(p.created_at, window.interval)].add(p.amount, p.refunded, order)
        by_location.setdefault(p.location_id, Figures()).add(p.amount, p.refunded, order)
        for sku, gross, refunds in _by_sku(p):
            by_product.setdefault(sku, Figures()).add(gross, refunds, order)
    active = [
        s
        for s in subscriptions
        if s.status.lower() in ACTIVE_SUBSCRIPTION_STATUSES and s.currency.upper() == currency
    ]
    with localcontext() as ctx:
        ctx.prec = 50
        mrr = sum((monthly_amount(s) for s in active), ZERO).quantize(CENT, rounding=ROUND_HALF_UP)
    return RevenueReport(
        currency=currency,
        interval=window.interval,
        totals=totals,
        series=sorted(series.items()),
        by_product=sorted(
            by_product.items(), key=lambda kv: (-kv[1].net, kv[0] is None, kv[0] or "")
        ),
        by_location=sorted(by_location.items(), key=lambda kv: (-kv[1].net, kv[0])),
        active_subscriptions=len(active),
        mrr=mrr,
        unreconciled_orders=unreconciled[0],
        unreconciled_amount=unreconciled[1],
    )


def _by_sku(p: Payment) -> list[tuple[str | None, Decimal, Decimal]]:
    """The payment's gross and refunds per SKU (lines of one SKU merged)."""
    if not p.lines:
        return [(None, p.amount, p.refunded)]
    weights: dict[str | None, Decimal] = {}
    for line in p.lines:
        weights[line.sku] = weights.get(line.sku, ZERO) + line.weight
    skus = list(weights)
    gross = split(p.amount, [weights[s] for s in skus])
    refunds = split(p.refunded, [weights[s] for s in skus])
    return list(zip(skus, gross, refunds, strict=True))


def money_str(value: Decimal) -> str:
    """A decimal string with at least two decimals, never rounded (`-0` shown as `0.00`)."""
    if value == 0:
        value = ZERO
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        value = value.quantize(CENT)
    return format(value, "f")


def _decimal(value: object) -> Decimal:
    if value is None or value == "":
        return ZERO
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return ZERO
