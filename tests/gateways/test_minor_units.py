"""Amounts to gateway minor units by Stripe's currency rules: exact or refused, never rounded."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wizesync.flows.refunds.gateways._minor_units import (
    THREE_DECIMAL,
    ZERO_DECIMAL,
    AmountNotRepresentable,
    from_minor_units,
    major_text,
    to_minor_units,
)

units = st.integers(min_value=1, max_value=10**9)
zero_decimal = st.sampled_from(sorted(ZERO_DECIMAL))
three_decimal = st.sampled_from(sorted(THREE_DECIMAL))
two_decimal = st.sampled_from(["USD", "EUR", "GBP", "CAD", "AUD", "usd"])


@given(units, zero_decimal)
def test_zero_decimal_currencies_have_no_minor_unit(n: int, currency: str) -> None:
    assert to_minor_units(Decimal(n), currency) == n
    assert to_minor_units(Decimal(f"{n}.00"), currency) == n
    assert from_minor_units(n, currency) == Decimal(n)


@given(units, st.integers(min_value=1, max_value=99), zero_decimal)
def test_zero_decimal_fractions_are_refused(n: int, cents: int, currency: str) -> None:
    with pytest.raises(AmountNotRepresentable, match="more decimals"):
        to_minor_units(Decimal(n) + Decimal(cents) / 100, currency)


@given(units, three_decimal)
def test_three_decimal_amounts_are_thousandths_in_multiples_of_ten(
    hundredths: int, currency: str
) -> None:
    amount = Decimal(hundredths) / 100
    minor = to_minor_units(amount, currency)
    assert minor == hundredths * 10 and minor % 10 == 0
    assert from_minor_units(minor, currency) == amount


@given(units, st.integers(min_value=1, max_value=9), three_decimal)
def test_three_decimal_amounts_stripe_cannot_take_are_refused(
    hundredths: int, last: int, currency: str
) -> None:
    amount = Decimal(hundredths) / 100 + Decimal(last) / 1000  # e.g. 1.235 KWD
    with pytest.raises(AmountNotRepresentable, match="multiple of 10"):
        to_minor_units(amount, currency)
    assert major_text(amount, currency) == f"{amount:.3f}"  # NMI/Authorize.net take it


@given(units, two_decimal)
def test_two_decimal_currencies_are_cents(cents: int, currency: str) -> None:
    amount = Decimal(cents) / 100
    assert to_minor_units(amount, currency) == cents
    assert major_text(amount, currency) == f"{amount:.2f}"
    with pytest.raises(AmountNotRepresentable):
        to_minor_units(amount + Decimal("0.001"), currency)


def test_isk_is_sent_with_two_zero_decimals() -> None:
    assert to_minor_units(Decimal("1500"), "ISK") == 150000
    with pytest.raises(AmountNotRepresentable, match="multiple of 100"):
        to_minor_units(Decimal("1500.50"), "ISK")


def test_examples() -> None:
    assert to_minor_units(Decimal("1000"), "JPY") == 1000
    assert to_minor_units(Decimal("12.34"), "USD") == 1234
    assert to_minor_units(Decimal("5.120"), "KWD") == 5120
    assert major_text(Decimal("5"), "JPY") == "5"
