"""Test databases: a fresh SQLite file or a fresh PostgreSQL database per test session.

PostgreSQL comes from WIZESYNC_TEST_POSTGRES_URL (default: the local `test` database). Each test
session creates its own database beside it, so parallel runs never share state. Where no
PostgreSQL answers, PostgreSQL tests skip with the reason, unless WIZESYNC_REQUIRE_POSTGRES=1
(CI), which turns that into a failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid

from sqlalchemy.engine import make_url

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def postgres_admin_url() -> str:
    return os.environ.get("WIZESYNC_TEST_POSTGRES_URL", DEFAULT_PG)


def postgres_required() -> bool:
    return os.environ.get("WIZESYNC_REQUIRE_POSTGRES", "") == "1"


def _plain_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_plain_dsn(postgres_admin_url()), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_postgres_database() -> tuple[str | None, str | None]:
    """(url, None) on success, (None, reason) when PostgreSQL cannot be used."""
    name = f"wizesync_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        return None, f"PostgreSQL not available at {make_url(postgres_admin_url())!r}: {exc}"
    return make_url(postgres_admin_url()).set(database=name).render_as_string(
        hide_password=False
    ), None


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    try:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except Exception:
        pass
