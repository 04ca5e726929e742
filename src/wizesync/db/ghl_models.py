"""Tables of the GHL side: installations and their tokens, OAuth states, the shared rate budget.

Tokens are stored only as Fernet ciphertext (see `wizesync.ghl.crypto`); nothing here ever holds
a usable token in clear.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Double,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from wizesync.db.base import Base, BigIntPK, UTCDateTime, utcnow


class UserType(enum.StrEnum):
    """GHL's `user_type`: whose token it is."""

    LOCATION = "Location"  # a sub-account
    COMPANY = "Company"  # an agency; mints location tokens through /oauth/locationToken


class AuthMode(enum.StrEnum):
    OAUTH = "oauth"
    PIT = "pit"  # Private Integration Token: static, configured, never stored here


class GhlInstallation(Base):
    """One row per installed location, plus one per agency (Company) install.

    A location row either holds its own refresh token (a Location install) or none, with a
    `company_id` whose agency row mints its access tokens (an agency install).
    """

    __tablename__ = "ghl_installations"
    __table_args__ = (
        CheckConstraint("user_type IN ('Location', 'Company')", name="user_type_valid"),
        CheckConstraint("auth_mode IN ('oauth', 'pit')", name="auth_mode_valid"),
        # One agency row per company (agency rows have no location).
        Index(
            "ix_ghl_installations_agency",
            "company_id",
            unique=True,
            sqlite_where=text("location_id IS NULL"),
            postgresql_where=text("location_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    location_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    company_id: Mapped[str | None] = mapped_column(String(64))
    user_type: Mapped[str] = mapped_column(String(16))
    auth_mode: Mapped[str] = mapped_column(String(8), default=AuthMode.OAUTH)
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    scopes: Mapped[str | None] = mapped_column(Text)
    app_id: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(64))
    needs_reauth: Mapped[bool] = mapped_column(Boolean, default=False)
    reauth_reason: Mapped[str | None] = mapped_column(Text)
    reauth_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # "Location is not active": no token call before this time; strikes grow the pause.
    inactive_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    inactive_strikes: Mapped[int] = mapped_column(Integer, default=0)
    installed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    uninstalled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class GhlOAuthState(Base):
    """A one-time `state` of an install redirect; only its SHA-256 is stored."""

    __tablename__ = "ghl_oauth_states"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_type: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class GhlRateBudget(Base):
    """A location's shared request budget: the reservation counter and what GHL told us.

    Times are epoch seconds (double): the limiter does arithmetic on them, and on PostgreSQL
    they come from the database's clock, so hosts with skewed clocks still agree.
    """

    __tablename__ = "ghl_rate_budgets"

    location_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_go_at: Mapped[float] = mapped_column(Double, default=0.0)
    paused_until: Mapped[float | None] = mapped_column(Double)
    server_max: Mapped[int | None] = mapped_column(Integer)  # X-RateLimit-Max
    server_window_ms: Mapped[int | None] = mapped_column(Integer)  # X-RateLimit-Interval-Ms
    daily_remaining: Mapped[int | None] = mapped_column(Integer)
    daily_observed_at: Mapped[float | None] = mapped_column(Double)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class GhlRateSlot(Base):
    """One reserved request: when it was to be sent, and until when it counts (its answer)."""

    __tablename__ = "ghl_rate_slots"

    location_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    go_at: Mapped[float] = mapped_column(Double)
    at: Mapped[float] = mapped_column(Double)
