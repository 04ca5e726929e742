"""Commands other packages add: the development commands (`dev`, `sandbox`) live in the
`wizesync_sandbox` package, which offers them as `wizesync.commands` entry points
(pyproject.toml), so the product never imports it. Where it is absent (the production image),
each command says so instead of running."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

import typer

from wizesync.cli.common import err


def add_plugin_commands(app: typer.Typer) -> None:
    for entry in entry_points(group="wizesync.commands"):
        try:
            command = entry.load()
        except ModuleNotFoundError as exc:
            if (exc.name or "").partition(".")[0] != entry.module.partition(".")[0]:
                raise  # the package is there but broken: its own traceback says why
            app.command(
                entry.name,
                help="(not installed here: development only)",
                context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
            )(_not_installed(entry.name, str(exc)))
        else:
            app.command(entry.name)(command)


def _not_installed(name: str, why: str) -> Callable[[], None]:
    def command() -> None:
        err.print(
            f"[red]`wizesync {name}` is not installed here:[/red] it comes with the development "
            "tools (the wizesync_sandbox package), which production images leave out; in a "
            f"checkout, `make install` installs them ({why})"
        )
        raise typer.Exit(2)

    return command
