"""ISO 4217 currency codes a payment can be made in.

From `pycountry` (it tracks the ISO 4217 maintenance agency's amendments through Debian's
iso-codes, e.g. ZWG in 2024 and XCG in 2025): a list copied here would go stale without anyone
noticing. The standard's codes that are not money anyone pays with are left out: precious
metals, bond-market and accounting units, and the codes reserved for testing and "no currency".
"""

from __future__ import annotations

from functools import cache

import pycountry

NOT_PAYABLE = frozenset(
    {
        "XAG",
        "XAU",
        "XPD",
        "XPT",  # silver, gold, palladium, platinum
        "XBA",
        "XBB",
        "XBC",
        "XBD",  # European bond-market units
        "XDR",
        "XSU",
        "XUA",
        "XAD",  # IMF SDR, SUCRE, ADB unit of account, Arab accounting dinar
        "XTS",
        "XXX",  # reserved for testing; "no currency"
    }
)


@cache
def iso_4217_codes() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.currencies) - NOT_PAYABLE


def check_currency(code: str) -> str:
    """`code` when it is an ISO 4217 currency a payment can be made in; ValueError otherwise."""
    if code not in iso_4217_codes():
        raise ValueError(f"{code!r} is not an ISO 4217 currency code")
    return code
