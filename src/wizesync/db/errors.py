"""Telling "the database is down or unreachable" apart from "this statement is wrong"."""

from __future__ import annotations

import asyncio

from sqlalchemy import exc as sa_exc


def is_db_unavailable(error: BaseException, _depth: int = 0) -> bool:
    """True for connection failures, timeouts and server shutdowns: the caller should retry."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return True
    if isinstance(error, sa_exc.TimeoutError):  # pool exhausted
        return True
    if isinstance(error, (ConnectionError, asyncio.TimeoutError, TimeoutError, OSError)):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        # asyncpg's server-shutdown / admin-shutdown errors (SQLSTATE class 57P, 08)
        sqlstate = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in {"08", "57", "53"}:
            return True
    cause = error.__cause__ or error.__context__
    if cause is not None and cause is not error and _depth < 5:
        return is_db_unavailable(cause, _depth + 1)
    return False
