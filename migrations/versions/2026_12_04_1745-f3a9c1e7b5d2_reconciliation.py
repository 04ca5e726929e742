"""reconciliation: runs, items, and a running run's working set of GHL orders

Revision ID: f3a9c1e7b5d2
Revises: f3a8d2c61b90
Create Date: 2026-12-04 17:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from wizesync.db.base import BigIntPK, UTCDateTime
from wizesync.db.models import JSONType

revision: str = "f3a9c1e7b5d2"
down_revision: str | None = "f3a8d2c61b90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("fire_time", UTCDateTime(), nullable=True),
        sa.Column("since", UTCDateTime(), nullable=False),
        sa.Column("until", UTCDateTime(), nullable=False),
        sa.Column("heal", sa.Boolean(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("counts", JSONType, nullable=False),
        sa.Column("state", JSONType, nullable=True),
        sa.Column("lease_owner", sa.String(length=120), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_runs")),
        sa.UniqueConstraint("fire_time", name=op.f("uq_reconciliation_runs_fire_time")),
    )
    op.create_index(
        "ix_reconciliation_runs_status_lease", "reconciliation_runs", ["status", "lease_expires_at"]
    )
    op.create_index(
        "ix_reconciliation_runs_finished", "reconciliation_runs", ["status", "finished_at"]
    )
    op.create_table(
        "reconciliation_items",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("run_id", BigIntPK, nullable=False),
        sa.Column("order_key", sa.String(length=400), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("wizehire_order_id", sa.Text(), nullable=True),
        sa.Column("ghl_order_id", sa.String(length=64), nullable=True),
        sa.Column("ghl_location_id", sa.String(length=64), nullable=True),
        sa.Column("wizehire", JSONType, nullable=True),
        sa.Column("ghl", JSONType, nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("healed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["reconciliation_runs.id"],
            ondelete="CASCADE",
            name=op.f("fk_reconciliation_items_run_id_reconciliation_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_items")),
        sa.UniqueConstraint(
            "run_id", "order_key", name=op.f("uq_reconciliation_items_run_id_order_key")
        ),
    )
    op.create_index(
        "ix_reconciliation_items_run_category", "reconciliation_items", ["run_id", "category", "id"]
    )
    op.create_table(
        "reconciliation_ghl_orders",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("run_id", BigIntPK, nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("ghl_order_id", sa.String(length=64), nullable=False),
        sa.Column("invoice_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("amount", sa.Numeric(precision=14, scale=4), nullable=True),
        sa.Column("amount_refunded", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("payment_status", sa.String(length=24), nullable=True),
        sa.Column("fulfilled", sa.Boolean(), nullable=False),
        sa.Column("mapped", sa.Boolean(), nullable=False),
        sa.Column("transactions", JSONType, nullable=True),
        sa.Column("claimed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["reconciliation_runs.id"],
            ondelete="CASCADE",
            name=op.f("fk_reconciliation_ghl_orders_run_id_reconciliation_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_ghl_orders")),
        sa.UniqueConstraint(
            "run_id",
            "location_id",
            "ghl_order_id",
            name=op.f("uq_reconciliation_ghl_orders_run_id_location_id_ghl_order_id"),
        ),
    )
    op.create_index(
        "ix_reconciliation_ghl_orders_invoice",
        "reconciliation_ghl_orders",
        ["run_id", "location_id", "invoice_id"],
    )
    op.create_index(
        "ix_reconciliation_ghl_orders_claimed",
        "reconciliation_ghl_orders",
        ["run_id", "claimed", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_reconciliation_ghl_orders_claimed", table_name="reconciliation_ghl_orders")
    op.drop_index("ix_reconciliation_ghl_orders_invoice", table_name="reconciliation_ghl_orders")
    op.drop_table("reconciliation_ghl_orders")
    op.drop_index("ix_reconciliation_items_run_category", table_name="reconciliation_items")
    op.drop_table("reconciliation_items")
    op.drop_index("ix_reconciliation_runs_finished", table_name="reconciliation_runs")
    op.drop_index("ix_reconciliation_runs_status_lease", table_name="reconciliation_runs")
    op.drop_table("reconciliation_runs")
