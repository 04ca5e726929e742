"""What every command group shares: the settings loader, the two consoles, a database session,
and the GHL client with its shared budget.

Exit codes: 2 for what the operator typed or configured (the message says what to change), 1 when
GHL, Wizehire or the database said no.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from wizesync.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from wizesync.ghl.factory import GhlAccess

T = TypeVar("T")

console = Console()
err = Console(stderr=True)


def settings_or_exit() -> Settings:
    """Settings, or a message in words and exit 2."""
    try:
        return load_settings()
    except (ValidationError, ConfigError) as exc:
        err.print(f"[red]configuration error:[/red] {config_message(exc)}")
        raise typer.Exit(2) from None


def config_message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for e in exc.errors(include_url=False):
            loc = ".".join(str(p) for p in e["loc"]).upper()
            msg = str(e["msg"]).removeprefix("Value error, ")
            parts.append(f"{loc}: {msg}" if loc else msg)
        return "; ".join(parts)
    return str(exc)


async def with_session(fn: Any) -> Any:
    """Runs `fn(sessionmaker)` against the configured database, then disposes of the engine."""
    from wizesync.db.engine import create_engine, create_sessionmaker

    engine = create_engine(settings_or_exit().database_url)
    try:
        return await fn(create_sessionmaker(engine))
    finally:
        await engine.dispose()


# --- GHL -----------------------------------------------------------------------------------------
# The commands that talk to GHL use the client the settings describe (OAuth installations or the
# Private Integration Token) and the per-location budget shared with the service. GHL's client
# and models are imported when a command runs, so the command line starts fast.


class Fail(Exception):
    """A failure said in words, with the exit code it deserves."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message, self.code = message, code


def exit_with(message: str, code: int) -> typer.Exit:
    err.print(f"[red]✗[/red] {message}", highlight=False)
    return typer.Exit(code)


def require_ghl(settings: Settings) -> None:
    from wizesync.ghl.factory import auth_mode

    if auth_mode(settings) != "none":
        return
    from wizesync.devmode import plan

    message = (
        "GHL is not configured: set GHL_PRIVATE_TOKEN and GHL_LOCATION_ID (Private "
        "Integration Token), or GHL_CLIENT_ID, GHL_CLIENT_SECRET and GHL_REDIRECT_URI "
        "(OAuth app) and install it"
    )
    if plan(settings) is not None:
        from wizesync.devmode import DEFAULT_LOCATION_ID, DEFAULT_PRIVATE_TOKEN

        message += (
            ". In development the service runs against its built-in sandbox; to use it "
            "from here, run with GHL_API_URL=http://127.0.0.1:8000/sandbox/ghl "
            f"GHL_PRIVATE_TOKEN={DEFAULT_PRIVATE_TOKEN} "
            f"GHL_LOCATION_ID={DEFAULT_LOCATION_ID}"
        )
    raise exit_with(message, 2)


async def with_ghl(settings: Settings, fn: Callable[[GhlAccess, Any], Awaitable[T]]) -> T:
    """Runs `fn(access, sessionmaker)` with a client, a database and the shared budget."""
    from sqlalchemy.exc import SQLAlchemyError

    from wizesync.db.engine import create_engine, create_sessionmaker
    from wizesync.ghl.factory import build_ghl_access
    from wizesync.ghl.http_client import build_http_client

    engine = create_engine(settings.database_url)
    http = build_http_client(settings)
    try:
        sessionmaker = create_sessionmaker(engine)
        try:
            access = build_ghl_access(settings, sessionmaker, http)
        except ConfigError as exc:
            raise Fail(str(exc), 2) from None
        try:
            return await fn(access, sessionmaker)
        except (SQLAlchemyError, OSError) as exc:  # the shared budget lives in the database
            raise Fail(
                f"the database is not usable: {type(exc).__name__}: {exc} (run `wizesync doctor`)"
            ) from None
        finally:
            try:
                await access.close()
            except Exception:  # noqa: S110  (the database is down: already reported)
                pass
    finally:
        await http.aclose()
        await engine.dispose()


def run_ghl(settings: Settings, fn: Callable[[GhlAccess, Any], Awaitable[T]]) -> T:
    """`with_ghl` from synchronous code; a `Fail` becomes its message and exit code."""
    try:
        return asyncio.run(with_ghl(settings, fn))
    except Fail as fail:
        raise exit_with(fail.message, fail.code) from None
