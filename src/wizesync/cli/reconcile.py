"""`wizesync reconcile [--since ISO] [--until ISO] [--heal/--no-heal]`: one run now, in this
process; a progress bar on a terminal (plain lines otherwise), the counts at the end.

Exit codes: 0 the run finished, 1 it failed (the reason is printed), 2 bad arguments or
configuration.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from wizesync.cli.common import console, err, settings_or_exit
from wizesync.config import ConfigError, Settings
from wizesync.db.reconcile_models import CATEGORIES, ReconciliationRun
from wizesync.reconcile.runs import InvalidWindow, Window, check_window, default_window
from wizesync.reconcile.views import iso

_PHASE_NAMES = {
    "ghl_orders": "GHL orders read",
    "ghl_transactions": "GHL transactions read",
    "wizehire": "Wizehire orders compared",
    "settle": "Wizehire orders settled once GHL's transactions were in",
    "unclaimed": "GHL orders left checked",
}
# Phases the engine runs side by side: one starting does not mean the other is over.
_TOGETHER = {"ghl_transactions", "wizehire", "settle"}


def reconcile(
    since: Annotated[
        str | None,
        typer.Option(help="window start, ISO-8601 (default: RECONCILE_WINDOW_DAYS before --until)"),
    ] = None,
    until: Annotated[str | None, typer.Option(help="window end, ISO-8601 (default: now)")] = None,
    heal: Annotated[
        bool,
        typer.Option(
            "--heal/--no-heal", help="queue the heal of what a webhook would fix (a worker runs it)"
        ),
    ] = True,
) -> None:
    """Reconcile Wizehire and GHL for a window now and print the counts by category."""
    from wizesync.logs import configure_logging

    settings = settings_or_exit()
    configure_logging(settings.log_level)
    try:
        window = _window(settings, since, until)
    except (ValueError, InvalidWindow) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    try:
        run = asyncio.run(_run(settings, window, heal))
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None
    _print_result(run)
    if run is None or run.status != "done":
        raise typer.Exit(1)


def _window(settings: Settings, since: str | None, until: str | None) -> Window:
    end = _moment(until, "--until") if until else default_window(settings).until
    if since:
        start = _moment(since, "--since")
    else:
        default = default_window(settings, end)
        start = default.since
    return check_window(start, end)


def _moment(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name}: not an ISO-8601 time: {value!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def _run(settings: Settings, window: Window, heal: bool) -> ReconciliationRun | None:
    from wizesync.db.engine import create_engine, create_sessionmaker
    from wizesync.flows.services import build_services
    from wizesync.ghl.http_client import build_http_client
    from wizesync.reconcile.runs import Reconciler

    engine = create_engine(settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    http = build_http_client(settings)
    try:
        services = build_services(settings, sessionmaker, http)
        with _progress() as progress:
            reconciler = Reconciler(
                settings=settings,
                sessionmaker=sessionmaker,
                services=services,
                http=http,
                progress=progress,
            )
            run_id = await reconciler.start(trigger="cli", window=window, heal=heal)
            progress.announce(
                f"reconciliation {run_id}: {iso(window.since)} .. {iso(window.until)}"
            )
            run = await reconciler.execute(run_id, announce=False)
        close = getattr(services.limiter, "close", None)
        if close is not None:
            await close()
        return run
    finally:
        await http.aclose()
        await engine.dispose()


class _Reporter:
    """The engine's progress callback: a rich bar per phase on a terminal, else a plain line
    when a phase starts and every 1,000 units."""

    def __init__(self) -> None:
        self.terminal = console.is_terminal
        self.bar: Progress | None = None
        self.tasks: dict[str, TaskID] = {}
        self.done: dict[str, int] = {}
        self.last_line: dict[str, int] = {}

    def __enter__(self) -> _Reporter:
        if self.terminal:
            self.bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:,.0f}"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def announce(self, text: str) -> None:
        (self.bar.console if self.bar is not None else console).print(text, highlight=False)

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        name = _PHASE_NAMES.get(phase, phase)
        if self.bar is not None:
            if phase not in self.tasks:
                # The phases before are over (bar those run side by side): their bars show full.
                for other, task in self.tasks.items():
                    if phase in _TOGETHER and other in _TOGETHER:
                        continue
                    self.bar.update(
                        task,
                        total=self.done.get(other, 0) or 1,
                        completed=self.done.get(other, 0) or 1,
                    )
                self.tasks[phase] = self.bar.add_task(name, total=total)
            self.done[phase] = done
            self.bar.update(self.tasks[phase], completed=done, total=total)
            return
        last = self.last_line.get(phase)
        if last is None or done - last >= 1000:
            console.print(f"{name}: {done}", highlight=False)
            self.last_line[phase] = done


def _progress() -> _Reporter:
    return _Reporter()


def _print_result(run: ReconciliationRun | None) -> None:
    if run is None:
        err.print(
            "[red]the run was taken over by another process; see GET /admin/reconciliations[/red]"
        )
        return
    table = Table(title=f"reconciliation {run.id}: {run.status}")
    table.add_column("category")
    table.add_column("orders", justify="right")
    counts = run.counts or {}
    for category in CATEGORIES:
        table.add_row(category, str(counts.get(category, 0)))
    table.add_row("total", str(sum(counts.get(c, 0) for c in CATEGORIES)))
    console.print(table)
    if run.status != "done":
        err.print(f"[red]failed:[/red] {run.error}")
    elif run.heal:
        console.print(
            "heal events are queued for the orders a webhook would fix; a worker "
            "runs them (`wizesync events list`)"
        )
