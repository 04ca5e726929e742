"""`wizesync dev` and `wizesync sandbox`: the development commands this package adds to the
`wizesync` CLI (the `wizesync.commands` entry points in pyproject.toml)."""

from __future__ import annotations

from typing import Annotated

import typer


def dev(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    migrate: Annotated[bool, typer.Option(help="run migrations first")] = False,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
    log_format: Annotated[
        str | None,
        typer.Option(help="json or console; auto: console on a terminal unless LOG_FORMAT is set"),
    ] = None,
    expose_development: Annotated[
        bool,
        typer.Option(
            help="serve a non-production service on a non-loopback interface anyway",
            envvar="WIZESYNC_EXPOSE_DEVELOPMENT",
        ),
    ] = False,
) -> None:
    """`serve` for development (`make run`): with no GHL credentials configured, GHL and
    Wizehire are the sandbox, in this process and served at /sandbox. Development only."""
    from wizesync.cli.common import err, settings_or_exit
    from wizesync.cli.serve import serve_app

    if settings_or_exit().is_production:
        err.print(
            "[red]`wizesync dev` is for development only:[/red] production runs `wizesync "
            "serve` with GHL credentials (GHL_CLIENT_ID or GHL_PRIVATE_TOKEN)"
        )
        raise typer.Exit(2)
    serve_app(
        "wizesync_sandbox.dev:create_dev_app",
        host=host,
        port=port,
        migrate=migrate,
        workers=workers,
        log_format=log_format,
        expose_development=expose_development,
    )


def sandbox(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="ONE port for both fakes")] = 8010,
    service_url: Annotated[
        str,
        typer.Option(
            help="base URL of the service that receives the signed webhooks ('' for none)"
        ),
    ] = "http://127.0.0.1:8000",
    wizehire_secret: Annotated[
        str | None,
        typer.Option(
            help="Standard Webhooks secret for Wizehire events (default: the development secret)",
            envvar="SANDBOX_WIZEHIRE_SECRET",
        ),
    ] = None,
    webhooks: Annotated[
        str, typer.Option(help="send | hold | off: what happens to webhooks on state changes")
    ] = "send",
    seed: Annotated[
        bool, typer.Option("--seed/--empty", help="start with a demo location and products")
    ] = True,
) -> None:
    """Run the fake GHL and fake Wizehire on one port: GHL at /ghl, Wizehire at /wizehire, the
    control plane at /_sandbox (see /docs). Development only."""
    from wizesync.cli.common import err
    from wizesync_sandbox.runner import run

    if webhooks not in ("send", "hold", "off"):
        err.print("--webhooks must be send, hold or off")
        raise typer.Exit(2)
    run(
        host=host,
        port=port,
        service_url=service_url,
        wizehire_secret=wizehire_secret,
        webhooks=webhooks,
        seed=seed,
    )
