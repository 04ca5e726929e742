"""`wizesync events list|show|replay|purge`: the inbox, read and replayed from the shell."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from wizesync.cli.common import console, err, with_session
from wizesync.cli.purge import events_purge

events_app = typer.Typer(help="Inspect and replay inbox events", no_args_is_help=True)


@events_app.command("list")
def events_list(
    status: Annotated[str | None, typer.Option(help="queued, retry, dead, ...")] = None,
    source: Annotated[str | None, typer.Option(help="wizehire or ghl")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
) -> None:
    """Newest inbox events first."""
    from wizesync.db import inbox_repo

    async def run(sessionmaker: Any) -> Any:
        async with sessionmaker() as session:
            return await inbox_repo.list_events(session, status=status, source=source, limit=limit)

    rows = asyncio.run(with_session(run))
    table = Table("id", "source", "type", "status", "attempts", "received", "last error")
    for e in rows:
        table.add_row(
            str(e.id),
            e.source,
            e.type,
            e.status,
            str(e.attempts),
            e.received_at.strftime("%Y-%m-%d %H:%M:%S"),
            (e.last_error or "")[:60],
        )
    console.print(table)


@events_app.command("show")
def events_show(event_id: int) -> None:
    """One event with its attempts (JSON)."""
    from wizesync.db import inbox_repo
    from wizesync.ops.routes import event_summary

    async def run(sessionmaker: Any) -> Any:
        async with sessionmaker() as session:
            return await inbox_repo.get_event(session, event_id)

    event = asyncio.run(with_session(run))
    if event is None:
        err.print(f"no event {event_id}")
        raise typer.Exit(1)
    out = event_summary(event) | {
        "payload": event.payload,
        "attempt_log": [
            {
                "attempt": a.attempt,
                "worker_id": a.worker_id,
                "started_at": a.started_at,
                "finished_at": a.finished_at,
                "outcome": a.outcome,
                "error": a.error,
                "outbound_calls": a.outbound_calls or [],
            }
            for a in event.attempt_log
        ],
    }
    console.print_json(json.dumps(out, default=str))


@events_app.command("replay")
def events_replay(event_ids: list[int]) -> None:
    """Re-queue dead, quarantined, ignored or done events."""
    from wizesync.inbox.replay import replay

    async def run(sessionmaker: Any) -> list[str]:
        failures = []
        for event_id in event_ids:
            try:
                result = await replay(sessionmaker, event_id)
            except ValueError as exc:
                failures.append(str(exc))
                continue
            if result is None:
                failures.append(f"no event {event_id}")
            else:
                console.print(f"event {event_id} re-queued")
        return failures

    failures = asyncio.run(with_session(run))
    for failure in failures:
        err.print(f"[red]{failure}[/red]")
    if failures:
        raise typer.Exit(1)


events_app.command("purge")(events_purge)
