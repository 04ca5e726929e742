"""sync refunds: the gateway that moves the money, the intent recorded before its call, and
when GHL showed it

Revision ID: f3a9c1e7d2b4
Revises: f3a9c1e7b5d2
Create Date: 2026-12-04 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from wizesync.db.base import UTCDateTime

revision: str = "f3a9c1e7d2b4"
down_revision: str | None = "f3a9c1e7b5d2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("gateway", sa.String(32), nullable=True))
        batch_op.add_column(sa.Column("gateway_refund_id", sa.String(128), nullable=True))
        batch_op.add_column(sa.Column("gateway_action", sa.String(16), nullable=True))
        batch_op.add_column(sa.Column("gateway_attempted_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("ghl_seen_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("ghl_catchup_notified_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_refunds", schema=None) as batch_op:
        for name in (
            "ghl_catchup_notified_at",
            "ghl_seen_at",
            "gateway_attempted_at",
            "gateway_action",
            "gateway_refund_id",
            "gateway",
        ):
            batch_op.drop_column(name)
