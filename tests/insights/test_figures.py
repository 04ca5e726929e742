"""The pure rules of `wizesync.insights.figures` (no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wizesync.insights.figures import (
    ActiveSubscription,
    Line,
    Payment,
    Window,
    choose_currency,
    money_str,
    monthly_amount,
    periods,
    revenue_report,
    split,
)

T0 = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)  # a Monday, the last second of November


def pay(
    amount: str,
    *,
    refunded: str = "0",
    status: str = "succeeded",
    currency: str = "USD",
    at: datetime = T0,
    order: str | None = "o1",
    location: str = "L1",
    lines: tuple[Line, ...] = (),
) -> Payment:
    return Payment(
        transaction_id=f"t{amount}{at}",
        location_id=location,
        order_id=order,
        status=status,
        currency=currency,
        amount=Decimal(amount),
        refunded=Decimal(refunded),
        created_at=at,
        lines=lines,
    )


WINDOW = Window(
    since=datetime(2026, 11, 1, tzinfo=UTC), until=datetime(2026, 12, 8, tzinfo=UTC), interval="day"
)


def test_only_captured_payments_in_the_currency_and_window_count() -> None:
    payments = [
        pay("10.00"),
        pay("5.00", status="failed"),
        pay("7.00", status="pending"),
        pay("3.00", status="refunded", refunded="3.00", order="o2"),
        pay("4.00", status="partially_refunded", refunded="1.50", order="o3"),
        pay("100.00", currency="EUR"),
        pay("1.00", at=WINDOW.until),
        pay("2.00", at=WINDOW.since),
    ]
    report = revenue_report(payments, [], (0, Decimal(0)), window=WINDOW, currency="usd")
    assert report.currency == "USD"
    assert report.totals.gross == Decimal("19.00")  # 10 + 3 + 4 + 2 (since is included)
    assert report.totals.refunds == Decimal("4.50")
    assert report.totals.net == Decimal("14.50")
    assert len(report.totals.orders) == 3


def test_periods_are_utc_days_mondays_and_first_of_months() -> None:
    assert periods(WINDOW)[0] == date(2026, 11, 1) and periods(WINDOW)[-1] == date(2026, 12, 7)
    weeks = Window(WINDOW.since, WINDOW.until, "week")
    assert periods(weeks)[0] == date(2026, 10, 26)  # the Monday of the week of Nov 1
    assert all(p.weekday() == 0 for p in periods(weeks))
    months = Window(WINDOW.since, WINDOW.until, "month")
    assert periods(months) == [date(2026, 11, 1), date(2026, 12, 1)]
    across_year = Window(
        datetime(2026, 12, 15, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC), "month"
    )
    assert periods(across_year) == [date(2026, 12, 1), date(2027, 1, 1)]
    # A time one second before midnight UTC, given in another zone, stays in its UTC day.
    report = revenue_report(
        [pay("1.00", at=T0.astimezone(datetime.now().astimezone().tzinfo or UTC))],
        [],
        (0, Decimal(0)),
        window=WINDOW,
        currency="USD",
    )
    assert [(d, f.gross) for d, f in report.series if f.gross] == [
        (date(2026, 11, 30), Decimal("1.00"))
    ]


def test_mixed_orders_split_by_line_amount_and_add_up_exactly() -> None:
    lines = (Line("A", Decimal("1")), Line("B", Decimal("1")), Line(None, Decimal("1")))
    report = revenue_report(
        [pay("100.00", refunded="10.00", lines=lines)],
        [],
        (0, Decimal(0)),
        window=WINDOW,
        currency="USD",
    )
    by_sku = {sku: f for sku, f in report.by_product}
    assert sorted(f.gross for f in by_sku.values()) == [
        Decimal("33.33"),
        Decimal("33.33"),
        Decimal("33.34"),
    ]
    assert sum(f.gross for f in by_sku.values()) == Decimal("100.00")
    assert sum(f.refunds for f in by_sku.values()) == Decimal("10.00")
    assert all(len(f.orders) == 1 for f in by_sku.values())


@given(
    st.decimals(min_value=0, max_value=10**7, places=2),
    st.lists(st.decimals(min_value=0, max_value=10**5, places=2), min_size=1, max_size=8),
)
def test_split_always_adds_up_to_the_amount(amount: Decimal, weights: list[Decimal]) -> None:
    shares = split(amount, weights)
    assert sum(shares) == amount
    assert all(s >= 0 for s in shares)
    assert all(s.as_tuple().exponent >= -2 for s in shares)


def test_split_keeps_finer_amounts_exact() -> None:
    assert split(Decimal("1.005"), [Decimal(1), Decimal(1)]) == [Decimal("0.503"), Decimal("0.502")]


def test_default_currency_is_the_most_used_then_alphabetical() -> None:
    assert (
        choose_currency(
            [pay("1", currency="EUR"), pay("1", currency="EUR"), pay("900", currency="USD")],
            [],
            WINDOW,
        )
        == "EUR"
    )
    assert (
        choose_currency([pay("1", currency="GBP"), pay("1", currency="CAD")], [], WINDOW) == "CAD"
    )
    sub = ActiveSubscription("s", "L1", "active", "AUD", Decimal(5), "month")
    assert choose_currency([pay("1", status="failed")], [sub], WINDOW) == "AUD"
    assert choose_currency([], [], WINDOW) == "USD"


@pytest.mark.parametrize(
    ("interval", "count", "amount", "monthly"),
    [
        ("month", 1, "99.00", "99.00"),
        ("month", 3, "300.00", "100.00"),
        ("year", 1, "1200.00", "100.00"),
        ("week", 1, "12.00", "52.00"),
        ("week", 2, "12.00", "26.00"),
        ("day", 1, "1.20", "36.50"),
        (None, 1, "42.00", "42.00"),  # interval unknown: counted as monthly
    ],
)
def test_mrr_normalises_intervals_to_a_month(
    interval: str | None, count: int, amount: str, monthly: str
) -> None:
    sub = ActiveSubscription("s", "L1", "active", "USD", Decimal(amount), interval, count)
    assert monthly_amount(sub) == Decimal(monthly)


def test_mrr_counts_active_subscriptions_in_the_currency_rounded_once() -> None:
    subs = [
        ActiveSubscription(f"s{i}", "L1", "active", "USD", Decimal("10.00"), "week")
        for i in range(3)
    ]
    subs += [
        ActiveSubscription("x", "L1", "past_due", "USD", Decimal("99"), "month"),
        ActiveSubscription("y", "L1", "active", "EUR", Decimal("99"), "month"),
    ]
    report = revenue_report([], subs, (0, Decimal(0)), window=WINDOW, currency="USD")
    assert report.active_subscriptions == 3
    # 3 x 10 x 52 / 12 = 130 exactly (rounding each first would give 130.01).
    assert report.mrr == Decimal("130.00")


def test_money_strings_keep_every_digit() -> None:
    assert money_str(Decimal("150.1")) == "150.10"
    assert money_str(Decimal("7")) == "7.00"
    assert money_str(Decimal("0.125")) == "0.125"
    assert money_str(Decimal("-0")) == "0.00"
    assert money_str(Decimal("1E+3")) == "1000.00"


def test_window_must_be_aware_and_ordered() -> None:
    with pytest.raises(ValueError):
        Window(datetime(2026, 1, 1), datetime(2026, 1, 2), "day")
    with pytest.raises(ValueError):
        Window(T0, T0 - timedelta(days=1), "day")
