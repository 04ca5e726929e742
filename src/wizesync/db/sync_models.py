"""Tables of the sync itself: one record per Wizehire order, refunds, the poller's state, and
GHL orders nobody knows.

A sync record holds the result of every step (contact, invoice, payment, order, fulfillment)
as soon as it happens, so a crash between steps resumes where it stopped and creates nothing twice.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from wizesync.db.base import Base, BigIntPK, UTCDateTime, utcnow
from wizesync.db.models import JSONType

Money = Numeric(14, 4, asdecimal=True)


class SyncOrder(Base):
    __tablename__ = "sync_orders"
    __table_args__ = (
        UniqueConstraint("wizehire_order_id"),
        # Unique: one GHL order belongs to one Wizehire order (two matches racing for it: one
        # wins, the other's write fails and it looks again).
        Index("ix_sync_orders_ghl_order", "ghl_location_id", "ghl_order_id", unique=True),
        Index("ix_sync_orders_ghl_invoice", "ghl_location_id", "ghl_invoice_id"),
        Index("ix_sync_orders_location_checked", "ghl_location_id", "ghl_checked_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    wizehire_order_id: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[str] = mapped_column(String(255))
    ghl_location_id: Mapped[str | None] = mapped_column(String(64))
    # Wizehire's view as last received (pending | paid | cancelled) and the order body itself.
    wizehire_status: Mapped[str] = mapped_column(String(16))
    order_snapshot: Mapped[dict[str, Any]] = mapped_column(JSONType)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(Money)
    # Step results, each written before the next step runs.
    ghl_contact_id: Mapped[str | None] = mapped_column(String(64))
    ghl_invoice_id: Mapped[str | None] = mapped_column(String(64))
    # Set before POST /invoices/: a later attempt looks for the invoice (by its name) first.
    invoice_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    invoice_payment_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    invoice_voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ghl_order_id: Mapped[str | None] = mapped_column(String(64))
    # How the GHL order was found: explicit | matched | invoice
    ghl_order_source: Mapped[str | None] = mapped_column(String(16))
    ghl_fulfillment_id: Mapped[str | None] = mapped_column(String(64))
    # Payment state computed from GHL's current data (Wizehire's payment_status vocabulary).
    payment_status: Mapped[str | None] = mapped_column(String(24))
    amount_paid: Mapped[Decimal | None] = mapped_column(Money)
    amount_refunded: Mapped[Decimal | None] = mapped_column(Money)
    ghl_transaction_ids: Mapped[list[str] | None] = mapped_column(JSONType)
    subscription: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # When GHL's payment data was last read for this record: the poller re-checks the least
    # recently checked first (refunds change old transactions, which no "since" filter finds).
    ghl_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the order flow stored the payment state from GHL's answers to its own invoice
    # payment: the webhooks that payment caused, received before it, are news already stored
    # (flows/payments/advance.py).
    own_payment_state_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The last body Wizehire accepted (without synced_at): patch again only when it changes.
    last_synced_state: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The body (with its synced_at) being sent to Wizehire, stored before the PATCH so a retry
    # sends the very same bytes under the same Idempotency-Key; cleared once Wizehire accepts.
    pending_sync_state: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Something an operator should know that is not an error (e.g. "cancelled but paid").
    note: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class SyncRefund(Base):
    __tablename__ = "sync_refunds"
    __table_args__ = (
        UniqueConstraint("wizehire_refund_id"),
        Index("ix_sync_refunds_order_status", "wizehire_order_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    wizehire_refund_id: Mapped[str] = mapped_column(String(255))
    wizehire_order_id: Mapped[str] = mapped_column(String(255))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    reason_code: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    executor: Mapped[str] = mapped_column(String(32))
    # pending | manual_action_required | succeeded | failed (Wizehire's vocabulary)
    status: Mapped[str] = mapped_column(String(32))
    ghl_location_id: Mapped[str | None] = mapped_column(String(64))
    ghl_transaction_id: Mapped[str | None] = mapped_column(String(64))
    # The transaction's amountRefunded when the refund was accepted: success is growth past it.
    refunded_baseline: Mapped[Decimal | None] = mapped_column(Money)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The gateway moving the money (stripe | nmi | authorize_net), set with
    # `gateway_attempted_at` BEFORE its first call: a retry then looks before it sends again.
    gateway: Mapped[str | None] = mapped_column(String(32))
    gateway_refund_id: Mapped[str | None] = mapped_column(String(128))
    gateway_action: Mapped[str | None] = mapped_column(String(16))  # refund | void
    gateway_attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When GHL's amountRefunded showed a gateway refund (None: not yet), and when Slack was
    # told that it had not in time.
    ghl_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ghl_catchup_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The last body Wizehire accepted for this refund (idempotent re-sends).
    last_synced_state: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class PollerState(Base):
    """One row per GHL location: cursors and the lease that keeps one poller per location."""

    __tablename__ = "poller_state"

    location_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    transactions_cursor: Mapped[datetime | None] = mapped_column(UTCDateTime())
    subscriptions_cursor: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(120))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    last_counts: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Transaction id -> [sync record id, fingerprint of the transaction as listed]: the
    # transactions of the last run's listing whose records were refreshed (poller.py).
    seen_transactions: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class UnmatchedGhlOrder(Base):
    """A GHL order no sync record knows: recorded and reported, not dropped."""

    __tablename__ = "unmatched_ghl_orders"
    __table_args__ = (UniqueConstraint("ghl_location_id", "ghl_order_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    ghl_location_id: Mapped[str] = mapped_column(String(64))
    ghl_order_id: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_event_type: Mapped[str | None] = mapped_column(String(100))
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
