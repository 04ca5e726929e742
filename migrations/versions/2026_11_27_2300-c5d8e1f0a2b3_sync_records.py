"""sync records: orders, refunds, poller state, unmatched GHL orders

Revision ID: c5d8e1f0a2b3
Revises: b7e3c9d2f4a1
Create Date: 2026-11-27 21:12:38.256934
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from wizesync.db.base import BigIntPK, UTCDateTime
from wizesync.db.models import JSONType

revision: str = "c5d8e1f0a2b3"
down_revision: str | None = "b7e3c9d2f4a1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "poller_state",
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("transactions_cursor", UTCDateTime(), nullable=True),
        sa.Column("subscriptions_cursor", UTCDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(length=120), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
        sa.Column("last_run_at", UTCDateTime(), nullable=True),
        sa.Column("last_success_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_counts", JSONType, nullable=True),
        sa.PrimaryKeyConstraint("location_id", name=op.f("pk_poller_state")),
    )
    op.create_table(
        "sync_orders",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("wizehire_order_id", sa.String(length=255), nullable=False),
        sa.Column("account_id", sa.String(length=255), nullable=False),
        sa.Column("ghl_location_id", sa.String(length=64), nullable=True),
        sa.Column("wizehire_status", sa.String(length=16), nullable=False),
        sa.Column("order_snapshot", JSONType, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("ghl_contact_id", sa.String(length=64), nullable=True),
        sa.Column("ghl_invoice_id", sa.String(length=64), nullable=True),
        sa.Column("invoice_payment_recorded_at", UTCDateTime(), nullable=True),
        sa.Column("invoice_voided_at", UTCDateTime(), nullable=True),
        sa.Column("ghl_order_id", sa.String(length=64), nullable=True),
        sa.Column("ghl_order_source", sa.String(length=16), nullable=True),
        sa.Column("ghl_fulfillment_id", sa.String(length=64), nullable=True),
        sa.Column("payment_status", sa.String(length=24), nullable=True),
        sa.Column("amount_paid", sa.Numeric(precision=14, scale=4), nullable=True),
        sa.Column("amount_refunded", sa.Numeric(precision=14, scale=4), nullable=True),
        sa.Column("ghl_transaction_ids", JSONType, nullable=True),
        sa.Column("subscription", JSONType, nullable=True),
        sa.Column("last_synced_state", JSONType, nullable=True),
        sa.Column("synced_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_orders")),
        sa.UniqueConstraint("wizehire_order_id", name=op.f("uq_sync_orders_wizehire_order_id")),
    )
    with op.batch_alter_table("sync_orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_orders_ghl_invoice", ["ghl_location_id", "ghl_invoice_id"], unique=False
        )
        batch_op.create_index(
            "ix_sync_orders_ghl_order", ["ghl_location_id", "ghl_order_id"], unique=False
        )

    op.create_table(
        "sync_refunds",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("wizehire_refund_id", sa.String(length=255), nullable=False),
        sa.Column("wizehire_order_id", sa.String(length=255), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason_code", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("executor", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("ghl_location_id", sa.String(length=64), nullable=True),
        sa.Column("ghl_transaction_id", sa.String(length=64), nullable=True),
        sa.Column("refunded_baseline", sa.Numeric(precision=14, scale=4), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("notified_at", UTCDateTime(), nullable=True),
        sa.Column("processed_at", UTCDateTime(), nullable=True),
        sa.Column("last_synced_state", JSONType, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_refunds")),
        sa.UniqueConstraint("wizehire_refund_id", name=op.f("uq_sync_refunds_wizehire_refund_id")),
    )
    with op.batch_alter_table("sync_refunds", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_refunds_order_status", ["wizehire_order_id", "status"], unique=False
        )

    op.create_table(
        "unmatched_ghl_orders",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("ghl_location_id", sa.String(length=64), nullable=False),
        sa.Column("ghl_order_id", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_event_type", sa.String(length=100), nullable=True),
        sa.Column("snapshot", JSONType, nullable=True),
        sa.Column("reported_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unmatched_ghl_orders")),
        sa.UniqueConstraint(
            "ghl_location_id",
            "ghl_order_id",
            name=op.f("uq_unmatched_ghl_orders_ghl_location_id_ghl_order_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("unmatched_ghl_orders")
    with op.batch_alter_table("sync_refunds", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_refunds_order_status")

    op.drop_table("sync_refunds")
    with op.batch_alter_table("sync_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_orders_ghl_order")
        batch_op.drop_index("ix_sync_orders_ghl_invoice")

    op.drop_table("sync_orders")
    op.drop_table("poller_state")
