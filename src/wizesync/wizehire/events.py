"""Wizehire's webhook events, validated from the raw body (numbers parse straight to Decimal)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from wizesync.currencies import check_currency

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), AfterValidator(check_currency)]
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=4)]
# An order or refund moves money: a zero one is a sender's bug, not something to sync.
PositiveMoney = Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=4)]
# The largest quantity a 32-bit signed integer holds (GHL's order items and most stores keep it
# in one); beyond it a line's total is meaningless anyway.
Quantity = Annotated[int, Field(ge=1, le=2_147_483_647)]
NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=255, strip_whitespace=True)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Customer(_Model):
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    company: str | None = None


class OrderItem(_Model):
    sku: NonEmpty
    name: NonEmpty
    quantity: Quantity
    unit_amount: Money


class Order(_Model):
    id: NonEmpty
    account_id: NonEmpty
    status: Literal["pending", "paid", "cancelled"]
    currency: Currency
    amount: Money
    customer: Customer
    items: Annotated[list[OrderItem], Field(min_length=1)]
    ghl_location_id: str | None = None
    ghl_order_id: str | None = None
    created_at: datetime
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _items_add_up(self) -> Order:
        total = sum((item.quantity * item.unit_amount for item in self.items), Decimal(0))
        if total != self.amount:
            raise ValueError(f"items add up to {total}, but amount is {self.amount}")
        return self


class Refund(_Model):
    id: NonEmpty
    order_id: NonEmpty
    amount: PositiveMoney
    currency: Currency
    reason_code: Literal["duplicate", "customer_request", "fraud", "service_issue", "other"]
    note: str | None = None


class EventOrder(Order):
    """An order as an event brings it: it must move money (the orders Wizehire's API lists,
    `Order`, are read as they are, zero or not, for reconciliation to report)."""

    amount: PositiveMoney


class OrderData(_Model):
    order: EventOrder


class RefundData(_Model):
    refund: Refund


class OrderEvent(_Model):
    type: Literal["order.created", "order.updated"]
    timestamp: datetime
    data: OrderData

    @property
    def ordering_key(self) -> str:
        return f"wizehire:order:{self.data.order.id}"


class RefundRequestedEvent(_Model):
    type: Literal["refund.requested"]
    timestamp: datetime
    data: RefundData

    @property
    def ordering_key(self) -> str:
        # A refund waits behind everything else of its order.
        return f"wizehire:order:{self.data.refund.order_id}"


WIZEHIRE_EVENT_MODELS: dict[str, type[OrderEvent] | type[RefundRequestedEvent]] = {
    "order.created": OrderEvent,
    "order.updated": OrderEvent,
    "refund.requested": RefundRequestedEvent,
}
