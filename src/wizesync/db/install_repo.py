"""SQL for `ghl_installations`: a location's (or an agency's) install, its encrypted token pair,
and the reauth and inactive marks.

Locks: `lock_*` take a row lock on PostgreSQL (`SELECT ... FOR UPDATE`); on SQLite every
transaction already began IMMEDIATE (see `db.engine`), which serialises writers database-wide.
Either way the caller holds the lock until its transaction ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from wizesync.db.base import utcnow
from wizesync.db.ghl_models import AuthMode, GhlInstallation, UserType


def _postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _insert(session: AsyncSession) -> Any:
    return pg_insert if _postgres(session) else sqlite_insert


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
