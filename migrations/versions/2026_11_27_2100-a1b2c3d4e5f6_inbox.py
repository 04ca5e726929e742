"""inbox: events, attempts, worker heartbeats

Revision ID: a1b2c3d4e5f6
Revises:
Create Date: 2026-11-27 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from wizesync.db.base import BigIntPK, UTCDateTime
from wizesync.db.models import JSONType

revision: str = "a1b2c3d4e5f6"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "'queued', 'running', 'retry', 'done', 'dead', 'ignored', 'quarantined'"


def upgrade() -> None:
    op.create_table(
        "inbox_events",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("ordering_key", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("replay_base", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(120), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("handled_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("raw_body", sa.LargeBinary(), nullable=False),
        sa.Column("payload", JSONType, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_events")),
        sa.UniqueConstraint("source", "event_id", name=op.f("uq_inbox_events_source_event_id")),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_inbox_events_status_valid")),
    )
    op.create_index("ix_inbox_events_due", "inbox_events", ["status", "next_attempt_at"])
    op.create_index("ix_inbox_events_ordering", "inbox_events", ["ordering_key", "id"])
    op.create_index("ix_inbox_events_received", "inbox_events", ["received_at"])

    op.create_table(
        "event_attempts",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("event_id", BigIntPK, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(120), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("outbound_calls", JSONType, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_attempts")),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["inbox_events.id"],
            ondelete="CASCADE",
            name=op.f("fk_event_attempts_event_id_inbox_events"),
        ),
        sa.UniqueConstraint("event_id", "attempt", name=op.f("uq_event_attempts_event_id_attempt")),
    )
    op.create_index("ix_event_attempts_event_id", "event_attempts", ["event_id"])

    op.create_table(
        "worker_heartbeats",
        sa.Column("worker_id", sa.String(120), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("in_flight", sa.Integer(), nullable=False),
        sa.Column("stopped_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_worker_heartbeats")),
    )

    if op.get_bind().dialect.name == "postgresql":
        # Wake LISTENing workers the moment a queued event commits (insert or replay): no
        # extra round trip on the ingest path, and replays from any tool wake them too.
        op.execute(
            """
            CREATE FUNCTION wizesync_inbox_notify() RETURNS trigger AS $$
            BEGIN
              PERFORM pg_notify('wizesync_inbox', '');
              RETURN NULL;
            END $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            """
            CREATE TRIGGER inbox_events_notify_insert
            AFTER INSERT ON inbox_events
            FOR EACH ROW WHEN (NEW.status = 'queued')
            EXECUTE FUNCTION wizesync_inbox_notify()
            """
        )
        # A finished attempt frees its ordering key: wake workers in other processes for the
        # next event of that key instead of leaving it to their poll.
        op.execute(
            """
            CREATE TRIGGER inbox_events_notify_update
            AFTER UPDATE OF status ON inbox_events
            FOR EACH ROW WHEN (NEW.status = 'queued' OR OLD.status = 'running')
            EXECUTE FUNCTION wizesync_inbox_notify()
            """
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS inbox_events_notify_update ON inbox_events")
        op.execute("DROP TRIGGER IF EXISTS inbox_events_notify_insert ON inbox_events")
        op.execute("DROP FUNCTION IF EXISTS wizesync_inbox_notify()")
    op.drop_table("worker_heartbeats")
    op.drop_index("ix_event_attempts_event_id", table_name="event_attempts")
    op.drop_table("event_attempts")
    op.drop_index("ix_inbox_events_received", table_name="inbox_events")
    op.drop_index("ix_inbox_events_ordering", table_name="inbox_events")
    op.drop_index("ix_inbox_events_due", table_name="inbox_events")
    op.drop_table("inbox_events")
