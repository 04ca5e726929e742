"""SQL for `ghl_oauth_states`: the one-time `state` of an OAuth install, bounded and used once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wizesync.db.base import utcnow
from wizesync.db.ghl_models import GhlOAuthState

MAX_PENDING_STATES = 100


async def create_state(
    session: AsyncSession, *, state_hash: str, user_type: str, ttl: timedelta
) -> None:
    now = utcnow()
    expires_at = now + ttl
    # Housekeeping on the way: states a day past their expiry are of no use to anyone.
    await session.execute(
        delete(GhlOAuthState).where(GhlOAuthState.expires_at < now - timedelta(days=1))
    )
    # Bounded: at most MAX_PENDING_STATES usable states; the oldest make room (an install left
    # half-way stops working sooner, but no caller can grow the table without limit).
    keep = (
        select(GhlOAuthState.id)
        .where(GhlOAuthState.used_at.is_(None), GhlOAuthState.expires_at > now)
        .order_by(GhlOAuthState.id.desc())
        .limit(MAX_PENDING_STATES - 1)
    )
    await session.execute(
        delete(GhlOAuthState).where(
            GhlOAuthState.used_at.is_(None),
            GhlOAuthState.expires_at > now,
            GhlOAuthState.id.not_in(keep.scalar_subquery()),
        )
    )
    await session.execute(
        insert(GhlOAuthState).values(
            state_hash=state_hash, user_type=user_type, created_at=now, expires_at=expires_at
        )
    )


async def consume_state(session: AsyncSession, state_hash: str) -> str | None:
    """Use a state once: its user type when it was unused and unexpired, else None.

    One conditional UPDATE, so two callbacks racing with the same state cannot both win.
    """
    now = utcnow()
    stmt = (
        update(GhlOAuthState)
        .where(
            GhlOAuthState.state_hash == state_hash,
            GhlOAuthState.used_at.is_(None),
            GhlOAuthState.expires_at > now,
        )
        .values(used_at=now)
        .returning(GhlOAuthState.user_type)
    )
    return (await session.execute(stmt)).scalar_one_or_none()
