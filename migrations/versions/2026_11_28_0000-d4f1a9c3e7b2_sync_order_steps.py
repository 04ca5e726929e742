"""sync orders: invoice intent, the Wizehire push in flight, an operator note, and one Wizehire
order per GHL order

Revision ID: d4f1a9c3e7b2
Revises: c5d8e1f0a2b3
Create Date: 2026-11-28 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from wizesync.db.base import UTCDateTime
from wizesync.db.models import JSONType

revision: str = "d4f1a9c3e7b2"
down_revision: str | None = "c5d8e1f0a2b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("invoice_requested_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("pending_sync_state", JSONType, nullable=True))
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch_op.drop_index("ix_sync_orders_ghl_order")
        batch_op.create_index(
            "ix_sync_orders_ghl_order", ["ghl_location_id", "ghl_order_id"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("sync_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_orders_ghl_order")
        batch_op.create_index(
            "ix_sync_orders_ghl_order", ["ghl_location_id", "ghl_order_id"], unique=False
        )
        batch_op.drop_column("note")
        batch_op.drop_column("pending_sync_state")
        batch_op.drop_column("invoice_requested_at")
