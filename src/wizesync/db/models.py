"""Tables of the inbox: events as received, every attempt at handling them, worker heartbeats."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from wizesync.db.base import Base, BigIntPK, UTCDateTime, utcnow

JSONType = JSON().with_variant(JSONB(), "postgresql")


class EventStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting for its first attempt
    RUNNING = "running"  # leased by a worker
    RETRY = "retry"  # failed, waiting for next_attempt_at
    DONE = "done"
    DEAD = "dead"  # gave up; replayable
    IGNORED = "ignored"  # a type the service does not handle
    QUARANTINED = "quarantined"  # authenticated but unparseable; replayable

    @classmethod
    def pending(cls) -> tuple[str, ...]:
        """Statuses that still hold their place in an ordering key's line."""
        return (cls.QUEUED, cls.RETRY, cls.RUNNING)

    @classmethod
    def replayable(cls) -> tuple[str, ...]:
        return (cls.DEAD, cls.QUARANTINED, cls.DONE, cls.IGNORED)


class Source(enum.StrEnum):
    WIZEHIRE = "wizehire"
    GHL = "ghl"
    # Follow-up work a handler queued for later (`wizesync.inbox.internal`): same queue, same
    # leases, retries, dead letters and replay as a webhook.
    INTERNAL = "internal"


_STATUS_SQL = ", ".join(f"'{s.value}'" for s in EventStatus)
_LINE = "status IN ('queued', 'retry', 'running')"
_READY = "head AND status IN ('queued', 'retry')"


class InboxEvent(Base):
    __tablename__ = "inbox_events"
    __table_args__ = (
        UniqueConstraint("source", "event_id"),
        CheckConstraint(f"status IN ({_STATUS_SQL})", name="status_valid"),
        # The claim query: due events in arrival order.
        Index("ix_inbox_events_due", "status", "next_attempt_at"),
        # Each key's line (pending events only): who is next when the head leaves.
        Index(
            "ix_inbox_events_line",
            "ordering_key",
            "id",
            postgresql_where=text(_LINE),
            sqlite_where=text(_LINE),
        ),
        # The claim: each lane's waiting heads, earliest due first.
        Index(
            "ix_inbox_events_ready",
            "lane",
            "next_attempt_at",
            "id",
            postgresql_where=text(_READY),
            sqlite_where=text(_READY),
        ),
        Index("ix_inbox_events_received", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(100))
    ordering_key: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=EventStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # `attempts` when the event was last replayed: a replay gets the full attempt budget again
    # while attempt numbers (and their log rows) keep counting up.
    replay_base: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(120))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    raw_body: Mapped[bytes] = mapped_column(LargeBinary)
    # Hex sha256 of raw_body: the same event id with another body is a conflict, not a duplicate.
    body_sha256: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[Any | None] = mapped_column(JSONType)
    # The first event of its ordering key's line (or the one running): only heads are claimed.
    # Kept by database triggers in the statement that stores, finishes or replays an event.
    head: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # The tenant (GHL location, else Wizehire account) claims rotate over: `inbox/lanes.py`.
    lane: Mapped[str] = mapped_column(String(255), default="", server_default="")
    # Attempts in a row that committed no progress: the retry backoff grows with these.
    stalled_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    attempt_log: Mapped[list[EventAttempt]] = relationship(
        back_populates="event", lazy="raise", order_by="EventAttempt.attempt"
    )


class InboxLane(Base):
    """A tenant's lane: claims take from the lane served longest ago first."""

    __tablename__ = "inbox_lanes"
    __table_args__ = (Index("ix_inbox_lanes_served", "served_at", "lane"),)

    lane: Mapped[str] = mapped_column(String(255), primary_key=True)
    served_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EventAttempt(Base):
    __tablename__ = "event_attempts"
    __table_args__ = (UniqueConstraint("event_id", "attempt"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("inbox_events.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    worker_id: Mapped[str] = mapped_column(String(120))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # done | retry | dead | lost (lease expired) | released (shutdown)
    outcome: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    outbound_calls: Mapped[list[Any] | None] = mapped_column(JSONType)

    event: Mapped[InboxEvent] = relationship(back_populates="attempt_log", lazy="raise")


class WorkerHeartbeat(Base):
    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    in_flight: Mapped[int] = mapped_column(Integer, default=0)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
