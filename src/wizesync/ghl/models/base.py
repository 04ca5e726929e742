"""Shared pieces of the GHL models: camelCase aliases, tolerant responses, strict requests, money.

Responses keep every field GHL sends (`extra="allow"`) and require little, because GHL adds and
omits fields freely. Requests forbid unknown fields and serialise exactly as the spec names them
(`to_body()`: by alias, `None` left out, money as a JSON number).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints
from pydantic.alias_generators import to_camel


def _money_to_json(value: Decimal) -> int | float:
    # The spec types money as `number` in major units (150.1 USD): never a string, never cents.
    return int(value) if value == value.to_integral_value() else float(value)


Money = Annotated[
    Decimal, PlainSerializer(_money_to_json, return_type=int | float, when_used="json")
]
NonNegativeMoney = Annotated[Money, Field(ge=0)]
# GHL ids: 24-hex for payments objects, 20-char alphanumerics for locations and contacts.
GhlId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Currency = Annotated[str, StringConstraints(min_length=3, max_length=3, to_upper=True)]
AltType = Annotated[str, StringConstraints(pattern=r"^location$")]


class GhlModel(BaseModel):
    """A GHL answer: camelCase on the wire, snake_case here, unknown fields kept."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class GhlRequest(BaseModel):
    """A GHL request body: exactly the spec's fields, nothing unknown."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def to_body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class LocationScoped(GhlRequest):
    """Payments and invoices bodies name the location as `altId` + `altType: location`; the client
    fills them from the call's `location_id`."""

    alt_id: GhlId | None = None
    alt_type: AltType = "location"


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list: the items and, when GHL says, how many there are in all."""

    items: list[T]
    total: int | None = None
