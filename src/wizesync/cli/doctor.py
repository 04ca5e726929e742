"""`wizesync doctor [--go-live]`: the checks of `wizesync.doctor`, one line each."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from pydantic import ValidationError

from wizesync.cli.common import config_message, console, err
from wizesync.config import ConfigError, load_settings


def doctor(
    go_live: Annotated[
        bool,
        typer.Option(
            "--go-live",
            help="also what production needs, and a signed webhook round trip through --url",
        ),
    ] = False,
    url: Annotated[
        str, typer.Option(help="the running service (--go-live)", envvar="WIZESYNC_URL")
    ] = "http://127.0.0.1:8000",
    test_order: Annotated[
        bool,
        typer.Option(
            "--test-order", help="--go-live: also a sample order through the sandbox (staging)"
        ),
    ] = False,
) -> None:
    """Check configuration, database, migrations, webhook keys, GHL tokens and scopes, and
    Wizehire's API; say what is wrong in words. `--go-live`: the production checklist
    (docs/GO-LIVE.md)."""
    from wizesync.doctor.basic import run_checks
    from wizesync.doctor.golive import run_go_live

    try:
        settings = load_settings()
    except (ValidationError, ConfigError) as exc:
        err.print(f"[red]✗ configuration:[/red] {config_message(exc)}")
        raise typer.Exit(1) from None
    results = asyncio.run(
        run_go_live(settings, service_url=url, test_order=test_order)
        if go_live
        else run_checks(settings)
    )
    for ok, name, message in results:
        mark = "[green]✓[/green]" if ok else "[red]✗[/red]"
        console.print(f"{mark} {name}: {message}")
    if not all(ok for ok, _, _ in results):
        raise typer.Exit(1)
