"""Major units (Decimal) to a gateway's integer minor units, by Stripe's currency rules.

Stripe (https://docs.stripe.com/currencies): amounts are integers in the currency's smallest
unit; zero-decimal currencies (JPY, KRW, ...) have none; three-decimal currencies (BHD, JOD,
KWD, OMR, TND) have three, but the last digit must be 0 (the amount is a multiple of 10); ISK is
sent with two decimals that must be zero. An amount those rules cannot say exactly is refused,
never rounded: a refund moves exactly what was asked or nothing.
"""

from __future__ import annotations

from decimal import Decimal

ZERO_DECIMAL = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
# Two decimals on the wire, but only whole units are accepted.
WHOLE_UNITS_TWO_DECIMAL = frozenset({"ISK"})


class AmountNotRepresentable(ValueError):
    """The amount has more precision than the currency allows at the gateway (in words)."""


def exponent(currency: str) -> int:
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def step(currency: str) -> int:
    """Minor units an amount must be a multiple of."""
    code = currency.upper()
    if code in THREE_DECIMAL:
        return 10
    if code in WHOLE_UNITS_TWO_DECIMAL:
        return 100
    return 1


def to_minor_units(amount: Decimal, currency: str) -> int:
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise AmountNotRepresentable(
            f"{amount} {currency.upper()} has more decimals than {currency.upper()} allows "
            f"({exponent(currency)})"
        )
    minor = int(scaled)
    if minor % step(currency):
        raise AmountNotRepresentable(
            f"{amount} {currency.upper()} cannot be sent to the gateway: {currency.upper()} "
            f"amounts must be a multiple of {step(currency)} minor units"
        )
    return minor


def from_minor_units(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-exponent(currency))


def major_text(amount: Decimal, currency: str) -> str:
    """`12.50` for the gateways that take major units; too many decimals are refused."""
    places = exponent(currency)
    scaled = amount.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise AmountNotRepresentable(
            f"{amount} {currency.upper()} has more decimals than {currency.upper()} allows "
            f"({places})"
        )
    return f"{amount:.{places}f}"
