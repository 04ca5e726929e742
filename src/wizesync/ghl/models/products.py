"""Products and prices (apps/products.json): read-only here, to map SKUs to GHL prices."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from wizesync.ghl.models.base import GhlModel, Money


class Product(GhlModel):
    """GetProductResponseDto."""

    id: str = Field(alias="_id")
    location_id: str | None = None
    name: str | None = None
    product_type: str | None = None
    description: str | None = None
    available_in_store: bool | None = None
    variants: list[dict[str, Any]] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Price(GhlModel):
    """GetPriceResponseDto / DefaultPriceResponseDto: `amount` in major units."""

    id: str = Field(alias="_id")
    name: str | None = None
    type: str | None = None
    currency: str | None = None
    amount: Money | None = None
    compare_at_price: Money | None = None
    product: str | None = None
    location_id: str | None = None
    recurring: dict[str, Any] | None = None
    variant_option_ids: list[str] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class PriceList(GhlModel):
    """ListPricesResponseDto: `{prices, total}`."""

    prices: list[Price] = Field(default_factory=list)
    total: int | None = None


class ProductListStats(GhlModel):
    total: int | None = None


class ProductList(GhlModel):
    """ListProductsResponseDto: `{products, total: [{total}]}`."""

    products: list[Product] = Field(default_factory=list)
    total: list[ProductListStats] = Field(default_factory=list)

    @property
    def count(self) -> int | None:
        return self.total[0].total if self.total else None
