"""sync orders: when GHL's payment data was last read (the poller's re-check order)

Revision ID: e2b7c4d9a1f3
Revises: d4f1a9c3e7b2
Create Date: 2026-11-28 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from wizesync.db.base import UTCDateTime

revision: str = "e2b7c4d9a1f3"
down_revision: str | None = "d4f1a9c3e7b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ghl_checked_at", UTCDateTime(), nullable=True))
    op.create_index(
        "ix_sync_orders_location_checked", "sync_orders", ["ghl_location_id", "ghl_checked_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_sync_orders_location_checked", table_name="sync_orders")
    with op.batch_alter_table("sync_orders", schema=None) as batch_op:
        batch_op.drop_column("ghl_checked_at")
