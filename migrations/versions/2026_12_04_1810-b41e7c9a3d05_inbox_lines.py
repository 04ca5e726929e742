# ruff: noqa: S608  (the SQL is built from the constants below, never from input)
"""inbox: each ordering key's head marked in its row, lanes for fairness, stalled attempts

Revision ID: b41e7c9a3d05
Revises: f3a9c1e7d2b4
Create Date: 2026-12-04 18:00:00

The claim used to look for "due events with nothing earlier or running in their key" with a
per-row NOT EXISTS over every event of the key, a plan that depended on fresh statistics and
visited every blocked event of a hot key. Now each pending event knows whether it is its key's
head (`head`), kept true by the triggers below in the same statement that stores, finishes or
replays an event, so the claim reads only heads through a partial index. `lane` groups events
by tenant (location or account) for round-robin claiming; `inbox_lanes` remembers when each lane
was last served. `stalled_attempts` counts attempts in a row that committed no progress (what the
backoff grows with). The rules are stated in `wizesync.db.inbox_repo`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from wizesync.db.base import UTCDateTime

revision: str = "b41e7c9a3d05"
down_revision: str | None = "f3a9c1e7d2b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "('queued', 'retry', 'running')"
WAITING = "('queued', 'retry')"
# The two-key advisory lock space for "this ordering key's line" (the first key is a namespace).
LINE_LOCK = 0x77697A65
NEVER_SERVED = "1970-01-01 00:00:00.000000"

PG_FUNCTIONS = [
    f"""
    CREATE FUNCTION wizesync_inbox_enter() RETURNS trigger AS $$
    BEGIN
      IF NEW.status NOT IN {PENDING} THEN
        NEW.head := false;
        RETURN NEW;
      END IF;
      INSERT INTO inbox_lanes (lane, served_at) VALUES (NEW.lane, '{NEVER_SERVED}+00')
        ON CONFLICT DO NOTHING;
      IF NEW.ordering_key IS NULL THEN
        NEW.head := true;
      ELSE
        -- Serialises this key's line with a concurrent finish that may hand the head on.
        PERFORM pg_advisory_xact_lock({LINE_LOCK}, hashtext(NEW.ordering_key));
        NEW.head := NOT EXISTS (
          SELECT 1 FROM inbox_events
          WHERE ordering_key = NEW.ordering_key AND status IN {PENDING});
      END IF;
      RETURN NEW;
    END $$ LANGUAGE plpgsql
    """,
    f"""
    CREATE FUNCTION wizesync_inbox_move() RETURNS trigger AS $$
    DECLARE
      earlier bigint;
    BEGIN
      IF OLD.status IN {PENDING} AND NEW.status NOT IN {PENDING} THEN
        -- Leaving the line: the head hands on to the earliest event still in it.
        IF OLD.head THEN
          NEW.head := false;
          IF OLD.ordering_key IS NOT NULL THEN
            PERFORM pg_advisory_xact_lock({LINE_LOCK}, hashtext(OLD.ordering_key));
            UPDATE inbox_events SET head = true WHERE id = (
              SELECT id FROM inbox_events
              WHERE ordering_key = OLD.ordering_key AND status IN {PENDING} AND id <> OLD.id
              ORDER BY id LIMIT 1);
          END IF;
        END IF;
      ELSIF OLD.status NOT IN {PENDING} AND NEW.status IN {PENDING} THEN
        -- Back in the line (a replay): ahead of later events that are only waiting.
        INSERT INTO inbox_lanes (lane, served_at) VALUES (NEW.lane, '{NEVER_SERVED}+00')
          ON CONFLICT DO NOTHING;
        IF NEW.ordering_key IS NULL THEN
          NEW.head := true;
        ELSE
          PERFORM pg_advisory_xact_lock({LINE_LOCK}, hashtext(NEW.ordering_key));
          UPDATE inbox_events SET head = false
          WHERE ordering_key = NEW.ordering_key AND head AND status IN {WAITING}
            AND id > NEW.id;
          NEW.head := NOT EXISTS (
            SELECT 1 FROM inbox_events
            WHERE ordering_key = NEW.ordering_key AND head AND status IN {PENDING}
              AND id <> NEW.id);
        END IF;
      ELSIF OLD.status = 'running' AND NEW.status IN {WAITING} AND NEW.head
            AND NEW.ordering_key IS NOT NULL THEN
        -- An attempt ended in a retry: an earlier event that arrived meanwhile goes first.
        PERFORM pg_advisory_xact_lock({LINE_LOCK}, hashtext(NEW.ordering_key));
        SELECT id INTO earlier FROM inbox_events
        WHERE ordering_key = NEW.ordering_key AND status IN {WAITING} AND id < NEW.id
        ORDER BY id LIMIT 1;
        IF earlier IS NOT NULL THEN
          UPDATE inbox_events SET head = true WHERE id = earlier;
          NEW.head := false;
        END IF;
      END IF;
      RETURN NEW;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER inbox_events_enter BEFORE INSERT ON inbox_events
    FOR EACH ROW EXECUTE FUNCTION wizesync_inbox_enter()
    """,
    # A finished attempt no longer wakes every listening worker: the worker that finished it
    # claims next itself (batches, one wake-up per burst), and with N workers a wake-up per
    # finish made each of them claim after every other's finish. An event that is due now again
    # (a replay, a lease swept or handed back on shutdown) still wakes them.
    "DROP TRIGGER inbox_events_notify_update ON inbox_events",
    f"""
    CREATE TRIGGER inbox_events_notify_update
    AFTER UPDATE OF status ON inbox_events
    FOR EACH ROW WHEN (NEW.status = 'queued' OR (OLD.status = 'running'
      AND NEW.status IN {WAITING} AND NEW.next_attempt_at <= now()))
    EXECUTE FUNCTION wizesync_inbox_notify()
    """,
    # Not for a claim (waiting -> running): the hot path pays for no trigger call.
    f"""
    CREATE TRIGGER inbox_events_move BEFORE UPDATE OF status ON inbox_events
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status AND (
      OLD.status = 'running' OR OLD.status NOT IN {PENDING} OR NEW.status NOT IN {PENDING}))
    EXECUTE FUNCTION wizesync_inbox_move()
    """,
]

# SQLite serialises writers (BEGIN IMMEDIATE), so its triggers need no locks; it cannot assign
# NEW in a BEFORE trigger, so they run AFTER and update the row.
SQLITE_TRIGGERS = [
    f"""
    CREATE TRIGGER inbox_events_enter AFTER INSERT ON inbox_events
    WHEN NEW.status IN {PENDING}
    BEGIN
      INSERT OR IGNORE INTO inbox_lanes (lane, served_at) VALUES (NEW.lane, '{NEVER_SERVED}');
      UPDATE inbox_events SET head = 1
      WHERE id = NEW.id AND (NEW.ordering_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM inbox_events AS o
        WHERE o.ordering_key = NEW.ordering_key AND o.status IN {PENDING} AND o.id <> NEW.id));
    END
    """,
    f"""
    CREATE TRIGGER inbox_events_leave AFTER UPDATE OF status ON inbox_events
    WHEN OLD.head AND OLD.status IN {PENDING} AND NEW.status NOT IN {PENDING}
    BEGIN
      UPDATE inbox_events SET head = 0 WHERE id = NEW.id;
      UPDATE inbox_events SET head = 1 WHERE id = (
        SELECT id FROM inbox_events
        WHERE ordering_key = OLD.ordering_key AND status IN {PENDING} AND id <> OLD.id
        ORDER BY id LIMIT 1);
    END
    """,
    f"""
    CREATE TRIGGER inbox_events_reenter AFTER UPDATE OF status ON inbox_events
    WHEN OLD.status NOT IN {PENDING} AND NEW.status IN {PENDING}
    BEGIN
      INSERT OR IGNORE INTO inbox_lanes (lane, served_at) VALUES (NEW.lane, '{NEVER_SERVED}');
      UPDATE inbox_events SET head = 0
      WHERE NEW.ordering_key IS NOT NULL AND ordering_key = NEW.ordering_key AND head
        AND status IN {WAITING} AND id > NEW.id;
      UPDATE inbox_events SET head = (NEW.ordering_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM inbox_events AS o
        WHERE o.ordering_key = NEW.ordering_key AND o.head AND o.status IN {PENDING}
          AND o.id <> NEW.id))
      WHERE id = NEW.id;
    END
    """,
    f"""
    CREATE TRIGGER inbox_events_requeue AFTER UPDATE OF status ON inbox_events
    WHEN OLD.status = 'running' AND NEW.status IN {WAITING} AND NEW.head
      AND NEW.ordering_key IS NOT NULL AND EXISTS (
        SELECT 1 FROM inbox_events AS o
        WHERE o.ordering_key = NEW.ordering_key AND o.status IN {WAITING} AND o.id < NEW.id)
    BEGIN
      UPDATE inbox_events SET head = 1 WHERE id = (
        SELECT id FROM inbox_events
        WHERE ordering_key = NEW.ordering_key AND status IN {WAITING} AND id < NEW.id
        ORDER BY id LIMIT 1);
      UPDATE inbox_events SET head = 0 WHERE id = NEW.id;
    END
    """,
]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "inbox_lanes",
        sa.Column("lane", sa.String(255), nullable=False),
        sa.Column("served_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("lane", name=op.f("pk_inbox_lanes")),
    )
    op.create_index("ix_inbox_lanes_served", "inbox_lanes", ["served_at", "lane"])
    op.add_column(
        "inbox_events", sa.Column("head", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column(
        "inbox_events", sa.Column("lane", sa.String(255), nullable=False, server_default="")
    )
    op.add_column(
        "inbox_events",
        sa.Column("stalled_attempts", sa.Integer(), nullable=False, server_default="0"),
    )

    # Heads of what is pending now: a running event, else the earliest waiting one of its key.
    op.execute(
        f"UPDATE inbox_events SET head = true WHERE status = 'running' "
        f"OR (status IN {WAITING} AND ordering_key IS NULL)"
    )
    op.execute(
        f"""
        UPDATE inbox_events SET head = true
        WHERE id IN (
          SELECT min(id) FROM inbox_events AS e
          WHERE e.status IN {WAITING} AND e.ordering_key IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM inbox_events AS r
                            WHERE r.ordering_key = e.ordering_key AND r.status = 'running')
          GROUP BY e.ordering_key)
        """
    )
    op.execute(
        f"INSERT INTO inbox_lanes (lane, served_at) VALUES "
        f"('', '{NEVER_SERVED}{'+00' if postgres else ''}')"
    )

    where = sa.text(f"status IN {PENDING}")
    op.create_index(
        "ix_inbox_events_line",
        "inbox_events",
        ["ordering_key", "id"],
        postgresql_where=where,
        sqlite_where=where,
    )
    ready = sa.text(f"head AND status IN {WAITING}")
    op.create_index(
        "ix_inbox_events_ready",
        "inbox_events",
        ["lane", "next_attempt_at", "id"],
        postgresql_where=ready,
        sqlite_where=ready,
    )
    op.drop_index("ix_inbox_events_ordering", table_name="inbox_events")

    for statement in PG_FUNCTIONS if postgres else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS inbox_events_move ON inbox_events")
        op.execute("DROP TRIGGER IF EXISTS inbox_events_enter ON inbox_events")
        op.execute("DROP FUNCTION IF EXISTS wizesync_inbox_move()")
        op.execute("DROP FUNCTION IF EXISTS wizesync_inbox_enter()")
        op.execute("DROP TRIGGER inbox_events_notify_update ON inbox_events")
        op.execute(
            """
            CREATE TRIGGER inbox_events_notify_update
            AFTER UPDATE OF status ON inbox_events
            FOR EACH ROW WHEN (NEW.status = 'queued' OR OLD.status = 'running')
            EXECUTE FUNCTION wizesync_inbox_notify()
            """
        )
    else:
        for name in ("requeue", "reenter", "leave", "enter"):
            op.execute(f"DROP TRIGGER IF EXISTS inbox_events_{name}")
    op.create_index("ix_inbox_events_ordering", "inbox_events", ["ordering_key", "id"])
    op.drop_index("ix_inbox_events_ready", table_name="inbox_events")
    op.drop_index("ix_inbox_events_line", table_name="inbox_events")
    with op.batch_alter_table("inbox_events", schema=None) as batch_op:
        batch_op.drop_column("stalled_attempts")
        batch_op.drop_column("lane")
        batch_op.drop_column("head")
    op.drop_index("ix_inbox_lanes_served", table_name="inbox_lanes")
    op.drop_table("inbox_lanes")
