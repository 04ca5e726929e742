"""Payments (apps/payments.json): orders, fulfillments, transactions, subscriptions, white-label
providers. Statuses stay plain strings: the spec leaves most of them open (`type: object`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from wizesync.ghl.models.base import (
    GhlId,
    GhlModel,
    GhlRequest,
    LocationScoped,
    Money,
    NonNegativeMoney,
)

PaymentMode = Literal["cash", "card", "cheque", "bank_transfer", "other"]


# --- white-label providers --------------------------------------------------------------------
class WhitelabelProvider(GhlModel):
    """IntegrationProviderSchema / CreateWhitelabelIntegrationResponseDto."""

    id: str = Field(alias="_id")
    alt_id: str | None = None
    alt_type: str | None = None
    title: str | None = None
    route: str | None = None
    provider: str | None = None
    description: str | None = None
    image_url: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class RegisterWhitelabelProvider(LocationScoped):
    """CreateWhiteLabelIntegrationProviderDto."""

    unique_name: str = Field(min_length=1)
    title: str = Field(min_length=1)
    provider: Literal["authorize-net", "nmi"]
    description: str
    image_url: str


# --- orders -----------------------------------------------------------------------------------
class OrderSource(GhlModel):
    type: str | None = None
    sub_type: str | None = None
    id: str | None = None
    name: str | None = None
    meta: dict[str, Any] | None = None


class OrderItemPrice(GhlModel):
    id: str | None = Field(None, alias="_id")
    name: str | None = None
    amount: Money | None = None
    currency: str | None = None
    type: str | None = None


class OrderItem(GhlModel):
    """An order line. The spec types `items` as strings; real orders send objects with
    `price._id` and `qty` (GHL-FACTS), which is what fulfillments refer to."""

    id: str | None = Field(None, alias="_id")
    name: str | None = None
    qty: int | None = None
    price: OrderItemPrice | None = None
    product: dict[str, Any] | None = None


class AmountSummary(GhlModel):
    subtotal: Money | None = None
    discount: Money | None = None
    tax: Money | None = None
    shipping: Money | None = None


class Order(GhlModel):
    """OrderResponseSchema (lists) and GetOrderResponseSchema (one order) in one tolerant model."""

    id: str = Field(alias="_id")
    alt_id: str | None = None
    alt_type: str | None = None
    contact_id: str | None = None
    contact_name: str | None = None
    contact_email: str | None = None
    contact_snapshot: dict[str, Any] | None = None
    currency: str | None = None
    amount: Money | None = None
    subtotal: Money | None = None
    discount: Money | None = None
    amount_summary: AmountSummary | None = None
    status: str | None = None
    payment_status: str | None = None
    fulfillment_status: str | None = None
    live_mode: bool | None = None
    source: OrderSource | None = None
    source_type: str | None = None
    source_id: str | None = None
    items: list[OrderItem] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class RecordOrderPaymentCard(GhlRequest):
    type: Literal["visa", "mastercard", "other"]
    last4: str = Field(pattern=r"^\d{4}$")


class Cheque(GhlRequest):
    number: str


class RecordOrderPayment(LocationScoped):
    """PostRecordOrderPaymentBody: an offline payment on an EXISTING order."""

    mode: PaymentMode
    card: RecordOrderPaymentCard | None = None
    cheque: Cheque | None = None
    notes: str | None = None
    amount: NonNegativeMoney | None = None
    meta: dict[str, Any] | None = None
    is_partial_payment: bool | None = None


class RecordOrderPaymentResult(GhlModel):
    success: bool


# --- fulfillments -----------------------------------------------------------------------------
class FulfillmentTracking(GhlRequest):
    """FulfillmentTracking: every field optional in the spec."""

    tracking_number: str | None = None
    shipping_carrier: str | None = None
    tracking_url: str | None = None


class FulfillmentItem(GhlRequest):
    price_id: GhlId
    qty: int = Field(ge=1)


class CreateFulfillment(LocationScoped):
    """CreateFulfillmentDto."""

    trackings: list[FulfillmentTracking] = Field(default_factory=list)
    items: list[FulfillmentItem] = Field(min_length=1)
    notify_customer: bool = False


class FulfilledItem(GhlModel):
    id: str | None = Field(None, alias="_id")
    name: str | None = None
    qty: int | None = None
    price: OrderItemPrice | None = None
    product: dict[str, Any] | None = None


class Fulfillment(GhlModel):
    """FulfillmentSchema."""

    id: str = Field(alias="_id")
    alt_id: str | None = None
    alt_type: str | None = None
    trackings: list[dict[str, Any]] = Field(default_factory=list)
    items: list[FulfilledItem] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None


# --- transactions and subscriptions -----------------------------------------------------------
class Transaction(GhlModel):
    """TxnResponseSchema / GetTxnResponseSchema. A refund shows only as `amount_refunded`."""

    id: str = Field(alias="_id")
    alt_id: str | None = None
    alt_type: str | None = None
    contact_id: str | None = None
    currency: str | None = None
    amount: Money | None = None
    amount_refunded: Money | None = None
    status: str | None = None
    live_mode: bool | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    entity_source_type: str | None = None
    entity_source: OrderSource | None = None
    charge_id: str | None = None
    invoice_id: str | None = None
    subscription_id: str | None = None
    payment_provider_type: str | None = None
    payment_provider: dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    fulfilled_at: datetime | None = None


class Subscription(GhlModel):
    """SubscriptionResponseSchema / GetSubscriptionResponseSchema."""

    id: str = Field(alias="_id")
    alt_id: str | None = None
    alt_type: str | None = None
    contact_id: str | None = None
    currency: str | None = None
    amount: Money | None = None
    status: str | None = None
    live_mode: bool | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    entity_source_type: str | None = None
    subscription_id: str | None = None
    schedule: dict[str, Any] | None = None
    canceled_at: datetime | None = None
    payment_provider_type: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


# --- list answers (each list endpoint has its own keys) ---------------------------------------
class OrderList(GhlModel):
    data: list[Order] = Field(default_factory=list)
    total_count: int | None = None


class TransactionList(GhlModel):
    data: list[Transaction] = Field(default_factory=list)
    total_count: int | None = None


class SubscriptionList(GhlModel):
    data: list[Subscription] = Field(default_factory=list)
    total_count: int | None = None


class FulfillmentList(GhlModel):
    """ListFulfillmentResponseDto: `{status, data}`, no paging."""

    status: bool | None = None
    data: list[Fulfillment] = Field(default_factory=list)


class CreateFulfillmentResult(GhlModel):
    status: bool | None = None
    data: Fulfillment


class WhitelabelProviderList(GhlModel):
    """ListWhitelabelIntegrationProviderResponseDto: `{providers}`, no total. The spec's
    `allOf` makes it one object; tolerate the list a list endpoint more plausibly returns."""

    providers: list[WhitelabelProvider] | WhitelabelProvider | None = None

    def as_list(self) -> list[WhitelabelProvider]:
        if self.providers is None:
            return []
        return self.providers if isinstance(self.providers, list) else [self.providers]
