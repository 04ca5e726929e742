"""Engine and session factory, built once in the lifespan (never at import time)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession

# Errors that mean "the database is not answering" rather than "this query is wrong".
DB_CONNECT_TIMEOUT_SECONDS = 5
# A pooled PostgreSQL connection idle longer than this is pinged before it is used again.
PING_AFTER_IDLE_SECONDS = 5.0


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, *, echo: bool = False, pool_size: int = 20) -> AsyncEngine:
    kwargs: dict[str, Any] = {"echo": echo}
    if is_sqlite(url):
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(
            # Up to `pool_size` connections, opened as needed and then kept. No overflow: an
            # overflow connection is closed when it comes back while the pool is full, so a
            # steady load just above pool_size would connect and disconnect all the time.
            pool_size=pool_size,
            max_overflow=0,
            # No pool_pre_ping: `_replace_dropped_connections` does its job for less.
            pool_timeout=10,
            pool_recycle=1800,
            connect_args={"timeout": DB_CONNECT_TIMEOUT_SECONDS, "command_timeout": 30},
        )
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):
        _configure_sqlite(engine)
    else:
        _replace_dropped_connections(engine)
    return engine


def _replace_dropped_connections(engine: AsyncEngine) -> None:
    """A connection the server dropped is replaced at checkout, not used.

    `pool_pre_ping` would do it with three round trips on every checkout (the asyncpg dialect
    pings inside BEGIN ... ROLLBACK), more than a webhook's own INSERT. asyncpg already knows a
    backend was terminated (pg_terminate_backend, a server restart) once the server's goodbye
    has arrived, so `is_closed()` answers for free; only a connection that sat idle in the pool,
    where a silently vanished peer is likelier, still gets a real ping. DisconnectionError makes
    the pool discard the connection and hand out a fresh one.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        is_closed = getattr(dbapi_connection.driver_connection, "is_closed", None)
        if is_closed is not None and is_closed():
            raise DisconnectionError("the server closed this connection")
        idle_since = record.info.get("wizesync_idle_since")
        if idle_since is not None and time.monotonic() - idle_since > PING_AFTER_IDLE_SECONDS:
            try:
                engine.dialect.do_ping(dbapi_connection)
            except Exception as exc:
                raise DisconnectionError(f"ping failed: {exc}") from exc

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["wizesync_idle_since"] = time.monotonic()


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, a busy timeout, and BEGIN IMMEDIATE for every transaction.

    pysqlite's own transaction handling begins lazily with a DEFERRED transaction; a deferred
    transaction that later writes fails at once with SQLITE_BUSY (no busy wait) when another
    writer got there first. Taking the write lock at BEGIN makes concurrent writers queue on the
    busy timeout instead, which is what makes the worker's claim correct on SQLite.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


async def one_statement_transactions(session: AsyncSession) -> None:
    """On PostgreSQL, let each statement of this session commit by itself (autocommit).

    Only for a unit of work that is ONE statement, atomic on its own: it saves the BEGIN and
    COMMIT round trips, two of the three a webhook's INSERT would otherwise cost. Call it before
    the session's first statement. SQLite keeps its BEGIN IMMEDIATE transactions.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
