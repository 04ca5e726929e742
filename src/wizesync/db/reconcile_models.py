"""Tables of reconciliation: runs, their items (one per order of the window), and the GHL orders a
running run has read but not yet paired with a Wizehire order.

A run holds its own lease (`lease_owner`, `lease_expires_at`) so a crashed run is picked up by
another process or marked failed, and `fire_time` is unique so a scheduled fire time produces one
run however many replicas fire it. Items are unique per run on `order_key` (the order's identity:
`wh:<wizehire id>` or `ghl:<location>:<ghl order id>`), so a resumed run never writes one twice.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from wizesync.db.base import Base, BigIntPK, UTCDateTime, utcnow
from wizesync.db.models import JSONType
from wizesync.db.sync_models import Money

# The contract's table, in its order: an order gets the first category that applies.
CATEGORIES: tuple[str, ...] = (
    "missing_in_ghl",
    "missing_in_wizehire",
    "currency_mismatch",
    "amount_mismatch",
    "refund_mismatch",
    "status_mismatch",
    "fulfillment_missing",
    "matched",
)
# Not a category: a Wizehire order paired with a GHL order whose transactions the run is still
# reading. The run settles it into one of CATEGORIES before it finishes; readers never see it.
PENDING = "pending"


class ReconciliationRun(Base):
    __tablename__ = "reconciliation_runs"
    __table_args__ = (
        UniqueConstraint("fire_time"),
        Index("ix_reconciliation_runs_status_lease", "status", "lease_expires_at"),
        Index("ix_reconciliation_runs_finished", "status", "finished_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running, done, failed
    trigger: Mapped[str] = mapped_column(String(16))  # scheduled, manual, cli
    # Scheduled runs only; NULLs never collide, so manual runs are not limited by it.
    fire_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    until: Mapped[datetime] = mapped_column(UTCDateTime())
    heal: Mapped[bool] = mapped_column(Boolean, default=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # {category: n}: so far while running, final once done.
    counts: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    # Where a resumed run continues (phase and cursors).
    state: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    lease_owner: Mapped[str | None] = mapped_column(String(120))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)


class ReconciliationItem(Base):
    __tablename__ = "reconciliation_items"
    __table_args__ = (
        UniqueConstraint("run_id", "order_key"),
        Index("ix_reconciliation_items_run_category", "run_id", "category", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("reconciliation_runs.id", ondelete="CASCADE"))
    order_key: Mapped[str] = mapped_column(String(400))
    category: Mapped[str] = mapped_column(String(32))
    wizehire_order_id: Mapped[str | None] = mapped_column(Text)
    ghl_order_id: Mapped[str | None] = mapped_column(String(64))
    ghl_location_id: Mapped[str | None] = mapped_column(String(64))
    # {amount, currency, status, payment_status, amount_refunded}, amounts as decimal strings.
    wizehire: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # {amount, currency, payment_status, amount_refunded, fulfilled}
    ghl: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    detail: Mapped[str] = mapped_column(Text, default="")
    healed: Mapped[bool] = mapped_column(Boolean, default=False)


class ReconciliationGhlOrder(Base):
    """A GHL order a running run has read, waiting to be paired with a Wizehire order.

    The run's working set lives here rather than in memory, so a location with 100,000 orders
    costs indexed look-ups, not RAM; rows are deleted when the run finishes.
    """

    __tablename__ = "reconciliation_ghl_orders"
    __table_args__ = (
        UniqueConstraint("run_id", "location_id", "ghl_order_id"),
        Index("ix_reconciliation_ghl_orders_invoice", "run_id", "location_id", "invoice_id"),
        Index("ix_reconciliation_ghl_orders_claimed", "run_id", "claimed", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("reconciliation_runs.id", ondelete="CASCADE"))
    location_id: Mapped[str] = mapped_column(String(64))
    ghl_order_id: Mapped[str] = mapped_column(String(64))
    # The invoice the order came from (GHL order source), for the "invoice's order" match.
    invoice_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    currency: Mapped[str | None] = mapped_column(String(3))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    # Not read: the refunded amount is computed from `transactions` when the order is compared.
    amount_refunded: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    # GHL's own order status (completed, cancelled, ...); the payment state is computed from
    # `transactions` when the order is compared.
    payment_status: Mapped[str | None] = mapped_column(String(24))
    fulfilled: Mapped[bool] = mapped_column(Boolean, default=False)
    # An item's price or product is in the mapping (only those can be missing in Wizehire).
    mapped: Mapped[bool] = mapped_column(Boolean, default=False)
    # The order's transactions as read: [{id, status, amount, amount_refunded}].
    transactions: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    claimed: Mapped[bool] = mapped_column(Boolean, default=False)
