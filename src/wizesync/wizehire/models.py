"""The bodies of Wizehire's API (the contract's "Service -> Wizehire" part).

On the wire, amounts are decimal strings with at least two decimals ("149.00"; never rounded, so
"0.125" stays) and moments are ISO-8601 UTC with a `Z`. Every field is always sent, `null` when
unknown, so Wizehire sees the same shape on every call.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
    model_serializer,
)

from wizesync.wizehire.events import Order

PaymentStatus = Literal["pending", "paid", "partially_refunded", "refunded", "failed", "cancelled"]
RefundStatus = Literal["pending", "manual_action_required", "succeeded", "failed"]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]

_CENT = Decimal("0.01")


def decimal_text(value: Decimal) -> str:
    """Fixed-point text with at least two decimals: 149 -> "149.00", 1E+2 -> "100.00"."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        value = value.quantize(_CENT)
    return format(value, "f")


def as_utc(moment: datetime) -> datetime:
    # The service keeps UTC everywhere; a naive value (SQLite gives those back) is UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso_utc(moment: datetime) -> str:
    """ISO-8601 in UTC with a `Z`: 2026-11-27T12:00:00Z."""
    return as_utc(moment).isoformat().replace("+00:00", "Z")


Amount = Annotated[
    Decimal,
    Field(ge=0, allow_inf_nan=False),
    PlainSerializer(decimal_text, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^\d+\.\d{2,}$", "examples": ["149.00"]}),
]
UtcDateTime = Annotated[
    datetime,
    AfterValidator(as_utc),
    PlainSerializer(iso_utc, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-11-27T12:00:00Z"]}),
]


class _Body(BaseModel):
    # Frozen: the client serializes a body once and sends the same bytes on every retry.
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderSyncSubscription(_Body):
    """The GHL subscription tied to the order, mirrored for Wizehire."""

    ghl_subscription_id: str
    status: str = Field(description="GHL's subscription status, e.g. active, canceled, past_due")
    next_charge_at: UtcDateTime | None = None
    canceled_at: UtcDateTime | None = None


class OrderSync(_Body):
    """`PATCH /v1/orders/{order_id}/sync`: where the order stands in GHL.

    `synced_at` has no default on purpose: a replayed write must send the same body with the same
    Idempotency-Key, so callers take it from the sync record, not from the clock at send time.
    """

    ghl_location_id: str | None = None
    ghl_order_id: str | None = None
    ghl_invoice_id: str | None = None
    ghl_fulfillment_id: str | None = None
    payment_status: PaymentStatus
    amount_paid: Amount
    amount_refunded: Amount
    currency: Currency
    ghl_transaction_ids: list[str] = Field(default_factory=list)
    subscription: OrderSyncSubscription | None = None
    synced_at: UtcDateTime


class RefundUpdate(_Body):
    """`PATCH /v1/refunds/{refund_id}`: a refund's progress; `failure_reason` in words."""

    status: RefundStatus
    amount: Amount | None = None
    currency: Currency | None = None
    ghl_transaction_id: str | None = None
    failure_reason: str | None = None
    processed_at: UtcDateTime | None = None
    # The processor that moved the money and its refund's id; absent (not null) for manual.
    # stripe | nmi | authorize_net, or the name of a gateway plug-in added later.
    gateway: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")] | None = None
    gateway_refund_id: str | None = None

    @model_serializer(mode="wrap")
    def _gateway_absent_when_none(self, handler: Any) -> Any:
        data = handler(self)
        for name in ("gateway", "gateway_refund_id"):
            if data.get(name) is None:
                data.pop(name, None)
        return data


class WizehireSyncState(BaseModel):
    """The sync state Wizehire holds for an order: the service's PATCH bodies merged in order.
    Read tolerantly (every field optional): it is Wizehire's copy, compared, never trusted."""

    model_config = ConfigDict(extra="allow", frozen=True)

    ghl_location_id: str | None = None
    ghl_order_id: str | None = None
    ghl_invoice_id: str | None = None
    ghl_fulfillment_id: str | None = None
    payment_status: str | None = None
    amount_paid: Decimal | None = None
    amount_refunded: Decimal | None = None
    currency: str | None = None


class ListedOrder(Order):
    """An order as `GET /v1/orders` lists it: the event's order plus `updated_at` and `sync`
    (absent or null until the service has PATCHed it)."""

    updated_at: datetime | None = None
    sync: WizehireSyncState | None = None


class WizehireOrdersPage(BaseModel):
    """`GET /v1/orders` answer: orders changed since `updated_since`, and the next page's cursor."""

    model_config = ConfigDict(extra="allow", frozen=True)

    data: list[ListedOrder]
    next_cursor: str | None = None
