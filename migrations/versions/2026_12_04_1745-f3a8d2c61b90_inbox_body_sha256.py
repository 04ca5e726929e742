"""inbox events: the sha256 of the raw body, to tell a redelivery from another body under one id

Rows stored before this revision keep NULL; the ingest path hashes their raw body when it needs
to compare (`inbox_repo.stored_body_sha256`).

Revision ID: f3a8d2c61b90
Revises: e2b7c4d9a1f3
Create Date: 2026-12-04 17:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f3a8d2c61b90"
down_revision: str | None = "e2b7c4d9a1f3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbox_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbox_events", schema=None) as batch_op:
        batch_op.drop_column("body_sha256")
