"""Every SQL statement of the GHL side: installations and tokens, OAuth states, rate budgets.

Locks: `lock_*` take a row lock on PostgreSQL (`SELECT ... FOR UPDATE`); on SQLite every
transaction already began IMMEDIATE (see `db.engine`), which serialises writers database-wide.
Either way the caller holds the lock until its transaction ends.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from wizesync.db.base import utcnow
from wizesync.db.ghl_models import (
    AuthMode,
    GhlInstallation,
    GhlOAuthState,
    GhlRateBudget,
    GhlRateSlot,
    UserType,
)


def _postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _insert(session: AsyncSession) -> Any:
    return pg_insert if _postgres(session) else sqlite_insert


# --- installations ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredTokens:
    """A token pair as stored (ciphertext) and what came with it."""

    access_enc: str
    refresh_enc: str | None
    expires_at: datetime
    scopes: str | None


async def get_installation(session: AsyncSession, location_id: str) -> GhlInstallation | None:
    stmt = select(GhlInstallation).where(GhlInstallation.location_id == location_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock_installation(session: AsyncSession, location_id: str) -> GhlInstallation | None:
    """The location's row, locked and read fresh (another process may just have refreshed)."""
    stmt = (
        select(GhlInstallation)
        .where(GhlInstallation.location_id == location_id)
        .execution_options(populate_existing=True)
    )
    if _postgres(session):
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock_agency(session: AsyncSession, company_id: str) -> GhlInstallation | None:
    """The agency (Company) row of an agency install, locked and read fresh."""
    stmt = (
        select(GhlInstallation)
        .where(GhlInstallation.company_id == company_id, GhlInstallation.location_id.is_(None))
        .execution_options(populate_existing=True)
    )
    if _postgres(session):
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


def _fresh_install_values(tokens: StoredTokens | None, now: datetime) -> dict[str, Any]:
    """What a (re-)install resets: tokens, reauth and pause flags, the uninstall mark."""
    values: dict[str, Any] = {
        "auth_mode": AuthMode.OAUTH.value,
        "needs_reauth": False,
        "reauth_reason": None,
        "reauth_at": None,
        "inactive_until": None,
        "inactive_strikes": 0,
        "installed_at": now,
        "uninstalled_at": None,
        "updated_at": now,
    }
    if tokens is not None:
        values.update(
            access_token_enc=tokens.access_enc,
            refresh_token_enc=tokens.refresh_enc,
            expires_at=tokens.expires_at,
            scopes=tokens.scopes,
            last_refreshed_at=now,
        )
    return values


async def upsert_location(
    session: AsyncSession,
    *,
    location_id: str,
    company_id: str | None,
    tokens: StoredTokens | None,
    user_id: str | None = None,
) -> None:
    """Store a location's install: its own token pair, or (agency install) what its agency
    row mints, when `tokens` carries no refresh token or is None (minted on first use)."""
    now = utcnow()
    values = _fresh_install_values(tokens, now)
    if tokens is None:
        values.update(access_token_enc=None, refresh_token_enc=None, expires_at=None)
    if company_id is not None:
        values["company_id"] = company_id
    if user_id is not None:
        values["user_id"] = user_id
    stmt = _insert(session)(GhlInstallation).values(
        location_id=location_id, user_type=UserType.LOCATION.value, **values
    )
    stmt = stmt.on_conflict_do_update(index_elements=["location_id"], set_=values)
    await session.execute(stmt)


async def upsert_agency(
    session: AsyncSession,
    *,
    company_id: str,
    tokens: StoredTokens,
    user_id: str | None = None,
) -> None:
    now = utcnow()
    values = _fresh_install_values(tokens, now)
    if user_id is not None:
        values["user_id"] = user_id
    stmt = _insert(session)(GhlInstallation).values(
        location_id=None, company_id=company_id, user_type=UserType.COMPANY.value, **values
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["company_id"],
        index_where=text("location_id IS NULL"),
        set_=values,
    )
    await session.execute(stmt)


async def save_tokens(session: AsyncSession, row_id: int, tokens: StoredTokens) -> None:
    """A refreshed (or re-encrypted) pair; clears any inactive pause."""
    now = utcnow()
    await session.execute(
        update(GhlInstallation)
        .where(GhlInstallation.id == row_id)
        .values(
            access_token_enc=tokens.access_enc,
            refresh_token_enc=tokens.refresh_enc,
            expires_at=tokens.expires_at,
            scopes=tokens.scopes,
            inactive_until=None,
            inactive_strikes=0,
            last_refreshed_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


async def mark_needs_reauth(session: AsyncSession, row_ids: Sequence[int], reason: str) -> None:
    now = utcnow()
    await session.execute(
        update(GhlInstallation)
        .where(GhlInstallation.id.in_(list(row_ids)))
        .values(needs_reauth=True, reauth_reason=reason[:1000], reauth_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )


async def mark_inactive(
    session: AsyncSession, row_id: int, *, until: datetime, strikes: int
) -> None:
    await session.execute(
        update(GhlInstallation)
        .where(GhlInstallation.id == row_id)
        .values(inactive_until=until, inactive_strikes=strikes, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def record_install_event(
    session: AsyncSession,
    *,
    location_id: str | None,
    company_id: str | None,
    app_id: str | None,
    at: datetime,
) -> None:
    """An INSTALL webhook: the row exists (tokens come with the OAuth callback or the agency)."""
    values: dict[str, Any] = {"uninstalled_at": None, "updated_at": utcnow()}
    if app_id is not None:
        values["app_id"] = app_id
    # A late INSTALL never undoes a later UNINSTALL, nor moves a newer install time back.
    newer = or_(GhlInstallation.uninstalled_at.is_(None), GhlInstallation.uninstalled_at <= at)
    reinstalled = case(
        (GhlInstallation.uninstalled_at.is_not(None), at),
        else_=func.coalesce(GhlInstallation.installed_at, at),
    )
    set_ = {**values, "installed_at": reinstalled}
    if location_id is not None:
        if company_id is not None:
            values["company_id"] = set_["company_id"] = company_id
        stmt = (
            _insert(session)(GhlInstallation)
            .values(
                location_id=location_id,
                user_type=UserType.LOCATION.value,
                installed_at=at,
                auth_mode=AuthMode.OAUTH.value,
                needs_reauth=False,
                inactive_strikes=0,
                **values,
            )
            .on_conflict_do_update(index_elements=["location_id"], set_=set_, where=newer)
        )
    else:
        stmt = (
            _insert(session)(GhlInstallation)
            .values(
                location_id=None,
                company_id=company_id,
                user_type=UserType.COMPANY.value,
                installed_at=at,
                auth_mode=AuthMode.OAUTH.value,
                needs_reauth=False,
                inactive_strikes=0,
                **values,
            )
            .on_conflict_do_update(
                index_elements=["company_id"],
                index_where=text("location_id IS NULL"),
                set_=set_,
                where=newer,
            )
        )
    await session.execute(stmt)


async def record_uninstall(
    session: AsyncSession, *, location_id: str | None, company_id: str | None, at: datetime
) -> int:
    """An UNINSTALL: drop the tokens. A company-wide uninstall also ends the locations whose
    tokens that agency minted. Rows (re)installed after `at` are left alone (a late webhook).
    Returns how many rows changed."""
    if location_id is not None:
        target = GhlInstallation.location_id == location_id
    elif company_id is not None:
        target = (GhlInstallation.company_id == company_id) & or_(
            GhlInstallation.location_id.is_(None),
            GhlInstallation.refresh_token_enc.is_(None),
        )
    else:
        return 0
    result = await session.execute(
        update(GhlInstallation)
        .where(
            target, or_(GhlInstallation.installed_at.is_(None), GhlInstallation.installed_at <= at)
        )
        .values(
            uninstalled_at=at,
            access_token_enc=None,
            refresh_token_enc=None,
            expires_at=None,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def installation_ids_with_tokens(session: AsyncSession) -> list[int]:
    """Rows holding an encrypted token (for `wizesync tokens reencrypt`)."""
    stmt = (
        select(GhlInstallation.id)
        .where(
            or_(
                GhlInstallation.access_token_enc.is_not(None),
                GhlInstallation.refresh_token_enc.is_not(None),
            )
        )
        .order_by(GhlInstallation.id)
    )
    return list((await session.execute(stmt)).scalars())


async def lock_installation_by_id(session: AsyncSession, row_id: int) -> GhlInstallation | None:
    return await session.get(GhlInstallation, row_id, with_for_update=True)


async def replace_ciphertexts(
    session: AsyncSession, row_id: int, access_enc: str | None, refresh_enc: str | None
) -> None:
    """The same tokens under another key: only the ciphertexts change, nothing else."""
    await session.execute(
        update(GhlInstallation)
        .where(GhlInstallation.id == row_id)
        .values(access_token_enc=access_enc, refresh_token_enc=refresh_enc)
        .execution_options(synchronize_session=False)
    )


async def list_installations(session: AsyncSession) -> list[GhlInstallation]:
    stmt = select(GhlInstallation).order_by(
        GhlInstallation.location_id.is_(None),
        GhlInstallation.location_id,
        GhlInstallation.company_id,
    )
    return list((await session.execute(stmt)).scalars())


# --- OAuth states -------------------------------------------------------------------------------

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


# --- rate budgets -------------------------------------------------------------------------------


async def clock(session: AsyncSession) -> float:
    """Now, in epoch seconds: PostgreSQL's clock (one clock for every host), else ours."""
    if _postgres(session):
        value = await session.execute(select(func.extract("epoch", func.clock_timestamp())))
        return float(value.scalar_one())
    return time.time()


async def lock_budget(session: AsyncSession, location_id: str) -> tuple[GhlRateBudget, float]:
    """The location's budget row (created on first use), locked for this transaction, and the
    time right after the lock was granted (see `clock`), in the same round trip."""
    postgres = _postgres(session)
    columns: list[Any] = [GhlRateBudget]
    if postgres:
        columns.append(func.extract("epoch", func.clock_timestamp()))
    stmt = (
        select(*columns)
        .where(GhlRateBudget.location_id == location_id)
        .execution_options(populate_existing=True)
    )
    if postgres:
        stmt = stmt.with_for_update(of=GhlRateBudget)
    row = (await session.execute(stmt)).one_or_none()
    if row is None:
        await session.execute(
            _insert(session)(GhlRateBudget)
            .values(location_id=location_id, next_seq=0, last_go_at=0.0, updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["location_id"])
        )
        row = (await session.execute(stmt)).one()
    return row[0], float(row[1]) if postgres else time.time()


async def latest_slot_at(session: AsyncSession, location_id: str, upto_seq: int) -> float | None:
    """The latest time of any slot up to `upto_seq`: the request `limit` places back."""
    stmt = select(func.max(GhlRateSlot.at)).where(
        GhlRateSlot.location_id == location_id, GhlRateSlot.seq <= upto_seq
    )
    value = (await session.execute(stmt)).scalar_one_or_none()
    return None if value is None else float(value)


async def add_slots(
    session: AsyncSession,
    location_id: str,
    first_seq: int,
    times: Sequence[float],
    *,
    counted_until: float | None = None,
) -> None:
    """Slots from `first_seq` on, each going at its time; counted (`at`) until then, or until
    `counted_until` for slots reserved ahead that may be sent any time before it."""
    await session.execute(
        insert(GhlRateSlot),
        [
            {
                "location_id": location_id,
                "seq": first_seq + i,
                "go_at": go,
                "at": go if counted_until is None else max(go, counted_until),
            }
            for i, go in enumerate(times)
        ],
    )


async def extend_slots(session: AsyncSession, location_id: str, answered: dict[int, float]) -> None:
    """Requests answered at these times: each slot counts until then (it may have reached GHL
    late). Never moves a slot earlier."""
    table = GhlRateSlot.__table__  # Core executemany: one UPDATE statement, many rows
    assert isinstance(table, Table)
    stmt = (
        update(table)
        .where(
            table.c.location_id == bindparam("b_location"),
            table.c.seq == bindparam("b_seq"),
            table.c.at < bindparam("b_at"),
        )
        .values(at=bindparam("b_at"))
    )
    await session.execute(
        stmt,
        [{"b_location": location_id, "b_seq": seq, "b_at": at} for seq, at in answered.items()],
    )


async def settle_slots(session: AsyncSession, location_id: str, answered: dict[int, float]) -> None:
    """Slots reserved ahead (counted until the end of their lease) whose requests were answered
    at these times: they count until then, earlier or later (GHL counted them before)."""
    table = GhlRateSlot.__table__
    assert isinstance(table, Table)
    stmt = (
        update(table)
        .where(table.c.location_id == bindparam("b_location"), table.c.seq == bindparam("b_seq"))
        .values(at=bindparam("b_at"))
    )
    await session.execute(
        stmt,
        [{"b_location": location_id, "b_seq": seq, "b_at": at} for seq, at in answered.items()],
    )


async def release_slots(session: AsyncSession, location_id: str, seqs: Sequence[int]) -> None:
    """Slots reserved ahead and never sent: they stop counting."""
    await session.execute(
        delete(GhlRateSlot).where(
            GhlRateSlot.location_id == location_id, GhlRateSlot.seq.in_(list(seqs))
        )
    )


async def count_slots_in_window(
    session: AsyncSession, location_id: str, since: float, until: float
) -> int:
    """Requests sent by `until` whose answer came after `since`: what GHL may still count."""
    stmt = (
        select(func.count())
        .select_from(GhlRateSlot)
        .where(
            GhlRateSlot.location_id == location_id,
            GhlRateSlot.at > since,
            GhlRateSlot.go_at <= until,
        )
    )
    return int((await session.execute(stmt)).scalar_one())


async def prune_slots(session: AsyncSession, location_id: str, below_seq: int) -> None:
    await session.execute(
        delete(GhlRateSlot).where(
            GhlRateSlot.location_id == location_id, GhlRateSlot.seq < below_seq
        )
    )


async def update_budget(session: AsyncSession, location_id: str, **values: Any) -> None:
    await session.execute(
        update(GhlRateBudget)
        .where(GhlRateBudget.location_id == location_id)
        .values(updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )


async def get_budgets(session: AsyncSession) -> dict[str, GhlRateBudget]:
    rows = (await session.execute(select(GhlRateBudget))).scalars()
    return {row.location_id: row for row in rows}


async def slot_times(session: AsyncSession, location_id: str) -> list[float]:
    """Every kept slot's time, oldest first (for status and for tests of the invariant)."""
    stmt = (
        select(GhlRateSlot.at)
        .where(GhlRateSlot.location_id == location_id)
        .order_by(GhlRateSlot.seq)
    )
    return [float(v) for v in (await session.execute(stmt)).scalars()]
