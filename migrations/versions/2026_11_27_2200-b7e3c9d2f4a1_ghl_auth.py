"""ghl auth: installations and tokens, OAuth states, the shared rate budget

Revision ID: b7e3c9d2f4a1
Revises: a1b2c3d4e5f6
Create Date: 2026-11-27 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from wizesync.db.base import BigIntPK, UTCDateTime

revision: str = "b7e3c9d2f4a1"
down_revision: str | None = "a1b2c3d4e5f6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ghl_installations",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("location_id", sa.String(64), nullable=True),
        sa.Column("company_id", sa.String(64), nullable=True),
        sa.Column("user_type", sa.String(16), nullable=False),
        sa.Column("auth_mode", sa.String(8), nullable=False),
        sa.Column("access_token_enc", sa.Text(), nullable=True),
        sa.Column("refresh_token_enc", sa.Text(), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=True),
        sa.Column("app_id", sa.String(64), nullable=True),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("needs_reauth", sa.Boolean(), nullable=False),
        sa.Column("reauth_reason", sa.Text(), nullable=True),
        sa.Column("reauth_at", UTCDateTime(), nullable=True),
        sa.Column("inactive_until", UTCDateTime(), nullable=True),
        sa.Column("inactive_strikes", sa.Integer(), nullable=False),
        sa.Column("installed_at", UTCDateTime(), nullable=True),
        sa.Column("uninstalled_at", UTCDateTime(), nullable=True),
        sa.Column("last_refreshed_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ghl_installations")),
        sa.UniqueConstraint("location_id", name=op.f("uq_ghl_installations_location_id")),
        sa.CheckConstraint(
            "user_type IN ('Location', 'Company')",
            name=op.f("ck_ghl_installations_user_type_valid"),
        ),
        sa.CheckConstraint(
            "auth_mode IN ('oauth', 'pit')", name=op.f("ck_ghl_installations_auth_mode_valid")
        ),
    )
    op.create_index(
        op.f("ix_ghl_installations_agency"),
        "ghl_installations",
        ["company_id"],
        unique=True,
        sqlite_where=sa.text("location_id IS NULL"),
        postgresql_where=sa.text("location_id IS NULL"),
    )

    op.create_table(
        "ghl_oauth_states",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("user_type", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ghl_oauth_states")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_ghl_oauth_states_state_hash")),
    )
    op.create_index(op.f("ix_ghl_oauth_states_expires_at"), "ghl_oauth_states", ["expires_at"])

    op.create_table(
        "ghl_rate_budgets",
        sa.Column("location_id", sa.String(64), nullable=False),
        sa.Column("next_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_go_at", sa.Double(), nullable=False),
        sa.Column("paused_until", sa.Double(), nullable=True),
        sa.Column("server_max", sa.Integer(), nullable=True),
        sa.Column("server_window_ms", sa.Integer(), nullable=True),
        sa.Column("daily_remaining", sa.Integer(), nullable=True),
        sa.Column("daily_observed_at", sa.Double(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("location_id", name=op.f("pk_ghl_rate_budgets")),
    )

    op.create_table(
        "ghl_rate_slots",
        sa.Column("location_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("go_at", sa.Double(), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("location_id", "seq", name=op.f("pk_ghl_rate_slots")),
    )


def downgrade() -> None:
    op.drop_table("ghl_rate_slots")
    op.drop_table("ghl_rate_budgets")
    op.drop_index(op.f("ix_ghl_oauth_states_expires_at"), table_name="ghl_oauth_states")
    op.drop_table("ghl_oauth_states")
    op.drop_index(op.f("ix_ghl_installations_agency"), table_name="ghl_installations")
    op.drop_table("ghl_installations")
