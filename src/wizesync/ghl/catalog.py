"""A location's GHL products and prices, and whether a mapping's prices exist there.

`wizesync ghl catalog` prints `read_catalog`, `wizesync mapping init` writes a starting mapping
from it, and `wizesync mapping check --online` runs `check_mapping`: a wrong price id otherwise
shows up only when the first order for it dies.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from wizesync.ghl.client import GhlClient
from wizesync.ghl.errors import GhlNotFound, GhlNotInstalled
from wizesync.mapping import Mapping


@dataclass(frozen=True)
class CatalogLine:
    """One price of a product (or the product alone, `price_id` None, when it has no price)."""

    product_id: str
    product_name: str
    price_id: str | None
    price_name: str
    amount: Decimal | None
    currency: str | None
    recurring: str | None  # e.g. "every 1 month"; None for a one-time price


async def read_catalog(client: GhlClient, location_id: str) -> list[CatalogLine]:
    """Every product of the location with each of its prices, in GHL's order."""
    lines: list[CatalogLine] = []
    async for product in client.iter_products(location_id):
        name = product.name or ""
        prices = [p async for p in client.iter_prices(location_id, product.id)]
        if not prices:
            lines.append(CatalogLine(product.id, name, None, "", None, None, None))
        for price in prices:
            lines.append(
                CatalogLine(
                    product_id=product.id,
                    product_name=name,
                    price_id=price.id,
                    price_name=price.name or "",
                    amount=price.amount,
                    currency=(price.currency or "").upper() or None,
                    recurring=_recurring(price.recurring),
                )
            )
    return lines


def _recurring(recurring: dict[str, object] | None) -> str | None:
    if not recurring:
        return None
    interval = recurring.get("interval")
    count = recurring.get("intervalCount") or 1
    return f"every {count} {interval}" if interval else "recurring"


@dataclass(frozen=True)
class PriceCheck:
    sku: str
    location_id: str
    price_id: str
    product_id: str
    problem: str | None  # None: the price exists, belongs to the product, currency agrees
    amount: Decimal | None = None
    currency: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def mapped_locations(mapping: Mapping) -> list[str]:
    """Every location an order can be routed to: the default and each account's, once."""
    found = [mapping.locations.default, *mapping.locations.accounts.values()]
    return list(dict.fromkeys(loc for loc in found if loc))


async def check_mapping(client: GhlClient, mapping: Mapping) -> list[PriceCheck]:
    """Each mapped SKU in each location orders can go to: does GHL hold its product and price
    there, is the price the product's, and is it in the mapped currency (when one is mapped)?
    Raises GhlError only for what stops every check (no credentials, GHL down): a missing
    product or price is a finding, not an error."""
    checks: list[PriceCheck] = []
    for location_id in mapped_locations(mapping):
        for sku, product in mapping.products.items():
            checks.append(
                await _check_one(
                    client, location_id, sku, product.product_id, product.price_id, product.currency
                )
            )
    return checks


async def _check_one(
    client: GhlClient,
    location_id: str,
    sku: str,
    product_id: str,
    price_id: str,
    currency: str | None,
) -> PriceCheck:
    def found(
        problem: str | None, amount: Decimal | None = None, have: str | None = None
    ) -> PriceCheck:
        return PriceCheck(sku, location_id, price_id, product_id, problem, amount, have)

    try:
        await client.get_product(location_id, product_id)
    except GhlNotInstalled as exc:  # this location only: the others can still be checked
        return found(exc.message)
    except GhlNotFound:
        return found(f"product {product_id} does not exist in location {location_id}")
    except ValueError as exc:  # an id GHL could never have made
        return found(f"product id {product_id!r}: {exc}")
    try:
        price = await client.get_price(location_id, product_id, price_id)
    except GhlNotFound:
        return found(
            f"price {price_id} is not a price of product {product_id} in location {location_id}"
        )
    except ValueError as exc:
        return found(f"price id {price_id!r}: {exc}")
    have = (price.currency or "").upper() or None
    if price.product and price.product != product_id:
        return found(
            f"price {price_id} belongs to product {price.product}, not {product_id}",
            price.amount,
            have,
        )
    if currency and have and have != currency.upper():
        return found(
            f"price {price_id} is in {have}, the mapping says {currency.upper()}",
            price.amount,
            have,
        )
    return found(None, price.amount, have)
