"""Invoices (apps/invoices.json): the public way to put an outside sale into GHL is
contact upsert -> create invoice -> record its payment (no endpoint creates an order)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field

from wizesync.ghl.models.base import (
    Currency,
    GhlId,
    GhlModel,
    GhlRequest,
    LocationScoped,
    Money,
    NonNegativeMoney,
)
from wizesync.ghl.models.payments import Cheque, PaymentMode


class Address(GhlRequest):
    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    state: str | None = None
    country_code: str | None = None
    postal_code: str | None = None


class BusinessDetails(GhlRequest):
    """BusinessDetailsDto: all optional, but the object itself is required."""

    logo_url: str | None = None
    name: str | None = None
    phone_no: str | None = None
    address: Address | None = None
    website: str | None = None


class InvoiceItem(GhlRequest):
    """InvoiceItemDto: `amount` is the unit price in major units."""

    name: str = Field(min_length=1)
    description: str | None = None
    product_id: GhlId | None = None
    price_id: GhlId | None = None
    currency: Currency
    amount: NonNegativeMoney
    qty: int = Field(ge=1)
    type: Literal["one_time", "recurring"] | None = None
    tax_inclusive: bool | None = None


class Discount(GhlRequest):
    type: Literal["percentage", "fixed"] = "fixed"
    value: NonNegativeMoney | None = None


class InvoiceContactDetails(GhlRequest):
    """ContactDetailsDto: `phoneNo` is required by the spec even when the contact has none."""

    id: GhlId
    name: str
    phone_no: str = ""
    email: str
    company_name: str | None = None
    address: Address | None = None


class SentTo(GhlRequest):
    email: list[str] = Field(min_length=1)
    email_cc: list[str] | None = None
    email_bcc: list[str] | None = None
    phone_no: list[str] | None = None


class CreateInvoice(LocationScoped):
    """CreateInvoiceDto."""

    name: str = Field(min_length=1)
    business_details: BusinessDetails = Field(default_factory=BusinessDetails)
    currency: Currency
    items: list[InvoiceItem] = Field(min_length=1)
    discount: Discount = Field(default_factory=lambda: Discount(type="fixed", value=0))
    terms_notes: str | None = None
    title: str | None = None
    contact_details: InvoiceContactDetails
    invoice_number: str | None = None
    issue_date: date
    due_date: date | None = None
    sent_to: SentTo
    live_mode: bool


class InvoiceCard(GhlRequest):
    brand: str = ""
    last4: str = ""


class RecordInvoicePayment(LocationScoped):
    """RecordPaymentDto. The spec requires `card`, `cheque` and `notes` whatever the mode, so they
    default to empty values rather than being left out."""

    mode: PaymentMode
    card: InvoiceCard = Field(default_factory=InvoiceCard)
    cheque: Cheque = Field(default_factory=lambda: Cheque(number=""))
    notes: str = ""
    amount: NonNegativeMoney | None = None
    meta: dict[str, Any] | None = None
    payment_schedule_ids: list[str] | None = None
    fulfilled_at: datetime | None = None


class VoidInvoice(LocationScoped):
    """VoidInvoiceDto: only the location."""


class InvoiceLine(GhlModel):
    id: str | None = Field(None, alias="_id")
    name: str | None = None
    product_id: str | None = None
    price_id: str | None = None
    currency: str | None = None
    amount: Money | None = None
    qty: int | None = None


class Invoice(GhlModel):
    """DefaultInvoiceResponseDto / GetInvoiceResponseDto (`invoiceNumber` is a number here and a
    string in requests)."""

    id: str = Field(alias="_id")
    status: str | None = None
    live_mode: bool | None = None
    alt_id: str | None = None
    alt_type: str | None = None
    name: str | None = None
    title: str | None = None
    invoice_number: int | str | None = None
    currency: str | None = None
    contact_details: dict[str, Any] | None = None
    business_details: dict[str, Any] | None = None
    issue_date: str | None = None
    due_date: str | None = None
    discount: dict[str, Any] | None = None
    invoice_items: list[InvoiceLine] = Field(default_factory=list)
    total: Money | None = None
    amount_paid: Money | None = None
    amount_due: Money | None = None
    total_summary: dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class InvoiceList(GhlModel):
    """ListInvoicesResponseDto: `{invoices, total}`."""

    invoices: list[Invoice] = Field(default_factory=list)
    total: int | None = None


class RecordInvoicePaymentResult(GhlModel):
    success: bool
    invoice: Invoice | None = None
