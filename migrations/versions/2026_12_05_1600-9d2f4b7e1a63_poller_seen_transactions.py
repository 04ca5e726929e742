"""poller state: the transactions the last runs listed, as they were, and their sync records

Revision ID: 9d2f4b7e1a63
Revises: 7c3e9a51d2b4
Create Date: 2026-12-05 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from wizesync.db.models import JSONType

revision: str = "9d2f4b7e1a63"
down_revision: str | None = "7c3e9a51d2b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("poller_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seen_transactions", JSONType, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("poller_state", schema=None) as batch_op:
        batch_op.drop_column("seen_transactions")
