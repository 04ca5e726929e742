"""`wizesync events purge`: delete finished events by age, or dead/quarantined ones by id.

    wizesync events purge --older-than 30d             # done and ignored events, by age
    wizesync events purge --status dead --id 17 --id 18
    wizesync events purge --status quarantined --id 40

Dead and quarantined events are never purged by age: they wait for an operator (a replay, or
this command naming them). Deleting an event deletes its attempt rows too. What retention means
for deduplication: `inbox/retention.py`.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Annotated, Any

import typer

from wizesync.cli.common import console, err, settings_or_exit
from wizesync.db.retention_repo import NAMED_STATUSES

_AGE = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_age(text: str) -> timedelta:
    """'30d', '12h', '90m' -> a timedelta; ValueError for anything else (or zero)."""
    match = _AGE.match(text.lower())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not an age such as 30d, 12h or 90m")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def events_purge(
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", help="done and ignored events older than this: 30d, 12h, 90m"),
    ] = None,
    status: Annotated[str | None, typer.Option(help="with --id: dead or quarantined")] = None,
    event_ids: Annotated[
        list[int] | None,
        typer.Option("--id", help="an event to purge (repeatable; needs --status)"),
    ] = None,
) -> None:
    """Delete old done/ignored events, or named dead/quarantined ones (attempts included)."""
    from wizesync.db.engine import create_engine, create_sessionmaker

    if (older_than is None) == (not event_ids):
        err.print("[red]give either --older-than AGE, or --status STATUS with --id N[/red]")
        raise typer.Exit(2)
    if older_than is not None and status is not None:
        err.print(
            "[red]--older-than purges done and ignored events only; dead and quarantined "
            "ones are purged by --id[/red]"
        )
        raise typer.Exit(2)
    if event_ids and status not in NAMED_STATUSES:
        err.print(f"[red]--id needs --status {' or '.join(NAMED_STATUSES)}[/red]")
        raise typer.Exit(2)
    age = None
    if older_than is not None:
        try:
            age = parse_age(older_than)
        except ValueError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None

    async def run() -> Any:
        from wizesync.db import retention_repo
        from wizesync.inbox.retention import purge_older_than

        engine = create_engine(settings_or_exit().database_url)
        try:
            sessionmaker = create_sessionmaker(engine)
            if age is not None:
                return await purge_older_than(sessionmaker, age)
            async with sessionmaker.begin() as session:
                return await retention_repo.purge_named(
                    session, status=status or "", event_ids=event_ids or []
                )
        finally:
            await engine.dispose()

    result = asyncio.run(run())
    if age is not None:
        console.print(f"{result} done or ignored events older than {older_than} purged")
        return
    missing = sorted(set(event_ids or []) - set(result))
    for event_id in result:
        console.print(f"event {event_id} purged")
    if missing:
        err.print(
            f"[red]not {status} (or no such event), kept: {', '.join(map(str, missing))}[/red]"
        )
        raise typer.Exit(1)
