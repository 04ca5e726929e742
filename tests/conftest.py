"""Fixtures: every database test runs on SQLite and on PostgreSQL (schema by `alembic upgrade`)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import MetaData, Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.support.databases import (
    create_postgres_database,
    drop_postgres_database,
    postgres_required,
)
from wizesync.config import Settings
from wizesync.db.engine import create_engine, create_sessionmaker
from wizesync.db.migrate import upgrade_head
from wizesync.devmode import SANDBOX_GHL_PUBLIC_KEY_PEM

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist's workers start with COLUMNS=80 and LINES=24 set; the CLI's module-level rich
    # consoles would fix their width at 80 on import, and the CLI tests' tables (COLUMNS=200 per
    # invocation) would wrap as they never do in one process.
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("db") / "wizesync.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade_head(url)
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url, reason = create_postgres_database()
    if url is None:
        if postgres_required():
            pytest.fail(f"WIZESYNC_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason or "PostgreSQL not available")
    upgrade_head(url)
    yield url
    drop_postgres_database(url)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Parametrises a test over both databases."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    async with engine.begin() as conn:  # each test starts from empty tables
        await conn.run_sync(_empty_all_tables, database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


# The tables to empty, per database: reflecting the schema costs several times the DELETEs, and
# no test changes the session databases' schema (migration tests make databases of their own).
_TABLES: dict[str, list[Table]] = {}


def _empty_all_tables(conn, database_url: str) -> None:  # type: ignore[no-untyped-def]
    """Every table the migrations made, children first (foreign keys), except alembic's own."""
    tables = _TABLES.get(database_url)
    if tables is None:
        meta = MetaData()
        meta.reflect(bind=conn)
        tables = [t for t in reversed(meta.sorted_tables) if t.name != "alembic_version"]
        _TABLES[database_url] = tables
    for table in tables:
        conn.execute(table.delete())


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "wizesync_env": "test",
        "database_url": database_url,
        "worker_poll_seconds": 0.2,
        "worker_backoff_base_seconds": 0.05,
        "worker_backoff_max_seconds": 0.2,
        "worker_lease_seconds": 5,
        "_env_file": None,
    }
    if overrides.get("wizesync_env") != "production":
        # Tests sign GHL webhooks with the sandbox's key (tests/support/signing.py): configured
        # outright, as an operator running a separate sandbox would (only the in-process
        # development sandbox makes the service trust it by itself; production refuses it).
        values["ghl_webhook_public_key"] = SANDBOX_GHL_PUBLIC_KEY_PEM
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str, engine: AsyncEngine) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def client_factory(settings: Settings):
    """Builds an app (lifespan running) and an httpx client on it; closes them after the test."""
    from contextlib import AsyncExitStack

    from wizesync.app import create_app
    from wizesync_sandbox.dev import create_dev_app

    stack = AsyncExitStack()

    async def build(
        app_settings: Settings | None = None, *, sandbox: bool = False, **kwargs: object
    ) -> httpx.AsyncClient:
        """`sandbox=True`: the app `wizesync dev` serves (the sandbox stands in for GHL)."""
        factory = create_dev_app if sandbox else create_app
        app = factory(app_settings or settings, **kwargs)  # type: ignore[arg-type]
        await stack.enter_async_context(_lifespan(app))
        return await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        )

    yield build
    await stack.aclose()


def _lifespan(app):  # type: ignore[no-untyped-def]
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def run():  # type: ignore[no-untyped-def]
        async with app.router.lifespan_context(app):
            yield

    return run()
