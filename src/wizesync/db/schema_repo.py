"""Where the schema stands: the revision in the database against the head of the migrations."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection


async def current_revision(conn: AsyncConnection) -> str | None:
    try:
        result = await conn.execute(text("SELECT version_num FROM alembic_version"))
    except DBAPIError:
        return None  # no alembic_version table: never migrated
    return result.scalar_one_or_none()


async def ping(conn: AsyncConnection) -> None:
    await conn.execute(text("SELECT 1"))
