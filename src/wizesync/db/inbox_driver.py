"""The webhook INSERT on PostgreSQL, straight through asyncpg on a connection of SQLAlchemy's pool.

The statement is `inbox_repo.insert_statement` compiled once by SQLAlchemy's own asyncpg dialect
(same SQL, same casts, same `ON CONFLICT (source, event_id) DO NOTHING RETURNING id`), and its
parameters go through the columns' own bind processors (UTC timestamps, JSONB text, bytea), so a
row stored here is the row `inbox_repo.insert_event` would store. What it skips is SQLAlchemy's
execution layer (result objects, the execution context, the adapted cursor): about 130 us of CPU
per statement on this path, more than asyncpg's own work. Only SQLAlchemy's public API is used:
the compiled statement's `positiontup`, `binds` and `insert_prefetch`, each type's
`dialect_impl(dialect).bind_processor(dialect)`, and `AsyncConnection.get_raw_connection()`.

The connection still comes from the engine's pool, through `engine.connect()`: one ceiling of
connections for the process, the checkout check that replaces a connection the server dropped
(`db/engine.py`), errors while connecting translated as on every other path, and `dispose()`
closes it. asyncpg runs each statement in autocommit when no transaction is open, as the INSERT
wants (storing is queueing; it commits by itself). `db/inbox_store.py` picks this path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from wizesync.db import inbox_repo
from wizesync.db.inbox_repo import NewEvent, StoredEvent

# SQLSTATE classes that mean "not answering" (connection exception, operator intervention such as
# a shutdown, insufficient resources): the sender should retry, as db/errors.py says for the ORM.
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "57", "53"})


class DriverConnectionLost(ConnectionError):
    """The database stopped answering during a driver-level statement. A ConnectionError, so it
    maps to 503 + Retry-After wherever `db.errors.is_db_unavailable` decides (it reads the
    original driver error from `__cause__`)."""


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    # Per positional parameter: its name in the values, its bind processor (None: as is) and
    # the default of a column the values leave out (SQLAlchemy sends it too, e.g. replay_base).
    params: tuple[tuple[str, Callable[[Any], Any] | None, Any], ...]

    def args(self, values: dict[str, Any]) -> list[Any]:
        out = []
        for name, process, default in self.params:
            value = values.get(name, default)
            # None goes through the processor too: JSON's turns it into JSON null, as the ORM.
            out.append(process(value) if process is not None else value)
        return out


def _compile(stmt: Any, dialect: Dialect, column_keys: list[str] | None = None) -> _Compiled:
    compiled = stmt.compile(dialect=dialect, column_keys=column_keys)
    defaults: dict[str, Any] = {}
    for column in getattr(compiled, "insert_prefetch", ()):
        if column.default is None or not column.default.is_scalar:
            # A callable default would need SQLAlchemy's execution context: pass it explicitly
            # in `inbox_repo.insert_values` instead.
            raise ValueError(f"column {column.name} has a non-scalar default")
        defaults[column.key] = column.default.arg
    positions = compiled.positiontup or []
    return _Compiled(
        compiled.string,
        tuple(
            (name, _processor(compiled.binds[name], dialect), defaults.get(name))
            for name in positions
        ),
    )


def _processor(bind: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """What the dialect does to a value of the parameter's type before sending it (None: as is)."""
    return bind.type.dialect_impl(dialect).bind_processor(dialect)


@functools.lru_cache(maxsize=16)
def _insert(dialect: Dialect, column_keys: tuple[str, ...]) -> _Compiled:
    return _compile(inbox_repo.insert_statement("postgresql"), dialect, list(column_keys))


@functools.lru_cache(maxsize=16)
def _find(dialect: Dialect) -> _Compiled:
    """`inbox_repo.find_event`'s SELECT; its parameters are (source, event_id), plain text."""
    compiled = _compile(inbox_repo.find_event_statement("", ""), dialect)
    if len(compiled.params) != 2 or any(process for _, process, _ in compiled.params):
        raise ValueError(f"unexpected parameters in {compiled.sql!r}")
    return compiled


def _unavailable(exc: BaseException, conn: Any) -> bool:
    if isinstance(exc, (OSError, TimeoutError, asyncpg.PostgresConnectionError)):
        return True
    if isinstance(exc, asyncpg.InternalClientError):
        # "cannot switch to state ..; another operation is in progress": the server's goodbye
        # (e.g. pg_terminate_backend's FATAL) arrived on the idle connection before its socket
        # closed, so the statement could not even start. The connection is dying; retry later.
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES:
        return True
    # "connection is closed", "connection was closed in the middle of operation", ...
    return isinstance(exc, asyncpg.InterfaceError) and conn is not None and conn.is_closed()


async def store_event(
    engine: AsyncEngine, event: NewEvent
) -> tuple[int | None, StoredEvent | None]:
    """INSERT .. ON CONFLICT DO NOTHING; (new row id, None) or, for a duplicate, (None, the
    stored event, read by a second statement as `inbox_repo.find_event` would)."""
    values = inbox_repo.insert_values(event)
    insert = _insert(engine.dialect, tuple(values))
    async with engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        try:
            row_id = await driver.fetchval(insert.sql, *insert.args(values))
            existing = None
            if row_id is None:
                find = _find(engine.dialect)
                row = await driver.fetchrow(find.sql, event.source, event.event_id)
                existing = StoredEvent(row[0], row[1]) if row is not None else None
        except BaseException as exc:
            lost = _unavailable(exc, driver)
            if lost or not isinstance(exc, asyncpg.PostgresError):
                # Cancelled mid-statement or cut off: the connection is in an unknown state, so
                # it is closed and replaced rather than handed to the next request.
                await connection.invalidate(exc if isinstance(exc, Exception) else None)
            if lost:
                raise DriverConnectionLost(
                    f"database connection lost: {type(exc).__name__}"
                ) from exc
            raise
    return row_id, existing
