"""The `wizesync` command: one module per command group, assembled here.

`common.py` holds what they share (the settings loader, the consoles, a database session, the GHL
client). Commands import the service's modules when they run, so the command line starts fast.
"""

from __future__ import annotations

import sys

import typer

from wizesync.cli import doctor, reconcile, serve, trigger
from wizesync.cli.events import events_app
from wizesync.cli.ghl import ghl_app
from wizesync.cli.mapping import mapping_app
from wizesync.cli.plugins import add_plugin_commands
from wizesync.cli.tokens import tokens_app

app = typer.Typer(help="wizesync: Wizehire <-> HighLevel payments sync", no_args_is_help=True)
# Typer lists commands in the order they are registered here.
app.command("reconcile")(reconcile.reconcile)
app.command()(serve.serve)
app.command()(serve.worker)
app.command()(serve.migrate)
app.command()(trigger.trigger)
app.command()(doctor.doctor)
app.add_typer(events_app, name="events")
app.add_typer(tokens_app, name="tokens")
app.add_typer(mapping_app, name="mapping")
app.add_typer(ghl_app, name="ghl")
add_plugin_commands(app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
