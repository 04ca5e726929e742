"""`wizesync sandbox`: the fake GHL and fake Wizehire, for development."""

from __future__ import annotations

from typing import Annotated

import typer

from wizesync.cli.common import err


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
    from wizesync.sandbox.runner import run

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
