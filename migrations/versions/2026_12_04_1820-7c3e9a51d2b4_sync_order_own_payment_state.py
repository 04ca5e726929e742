"""sync orders: when the order flow stored the payment state its own invoice payment showed

Revision ID: 7c3e9a51d2b4
Revises: b41e7c9a3d05
Create Date: 2026-12-04 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from wizesync.db.base import UTCDateTime

revision: str = "7c3e9a51d2b4"
down_revision: str | None = "b41e7c9a3d05"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("own_payment_state_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_orders", schema=None) as batch_op:
        batch_op.drop_column("own_payment_state_at")
