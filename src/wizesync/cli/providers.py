"""`wizesync ghl providers list|register`: the white-label payment provider endpoints.

Both use the GHL client the settings describe (OAuth installations or the Private Integration
Token) and the per-location budget shared with the service. Exit codes: 2 for what the operator
typed or configured (the message says what to change), 1 when GHL or the database said no.
GHL's client and models are imported when a command runs, so the command line starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.table import Table

from wizesync.cli.common import (
    Fail,
    console,
    err,
    exit_with,
    require_ghl,
    run_ghl,
    settings_or_exit,
)

if TYPE_CHECKING:
    from wizesync.config import Settings
    from wizesync.ghl.factory import GhlAccess

providers_app = typer.Typer(
    help="White-label payment providers of each location (NMI or Authorize.net based)",
    no_args_is_help=True,
)


async def _locations(settings: Settings, sessionmaker: Any) -> list[str]:
    from wizesync.ghl.factory import configured_locations

    try:
        async with sessionmaker() as session:
            return await configured_locations(settings, session)
    except Exception as exc:
        raise Fail(
            f"cannot read the GHL installations from the database: "
            f"{type(exc).__name__}: {exc} (run `wizesync doctor`)"
        ) from None


def _table(rows: list[tuple[str, dict[str, Any] | None]]) -> Table:
    table = Table(
        "location", "provider", "unique name", "title", "description", "image URL", "id", "created"
    )
    for location_id, p in rows:
        if p is None:
            table.add_row(location_id, "(none registered)", "", "", "", "", "", "")
            continue
        table.add_row(
            location_id,
            p["provider"] or "",
            p["unique_name"] or "",
            p["title"] or "",
            p["description"] or "",
            p["image_url"] or "",
            p["id"],
            (p["created_at"] or "")[:19],
        )
    return table


# --- list ----------------------------------------------------------------------------------------


@providers_app.command("list")
def providers_list(
    location: Annotated[
        str | None, typer.Option(help="one GHL location id (default: every configured location)")
    ] = None,
) -> None:
    """Print each location's white-label payment providers."""
    from wizesync.ghl.errors import GhlError
    from wizesync.ghl.transport import checked_id
    from wizesync.ops.providers import ghl_problem, provider_view

    settings = settings_or_exit()
    require_ghl(settings)
    if location is not None:
        try:
            checked_id(location, "location id")
        except ValueError as exc:
            raise exit_with(f"--location: {exc}", 2) from None

    async def run(access: GhlAccess, sessionmaker: Any) -> tuple[list[Any], list[str]]:
        locations = [location] if location else await _locations(settings, sessionmaker)
        if not locations:
            raise Fail(
                "no GHL location is installed yet: install the app (`wizesync ghl install-url`)"
            )
        rows: list[tuple[str, dict[str, Any] | None]] = []
        failures: list[str] = []
        for location_id in locations:
            try:
                page = await access.client.list_whitelabel_providers(location_id)
            except GhlError as exc:
                failures.append(f"location {location_id}: {ghl_problem(exc)}")
                continue
            rows += [(location_id, provider_view(p)) for p in page.items] or [(location_id, None)]
        return rows, failures

    rows, failures = run_ghl(settings, run)
    if rows:
        console.print(_table(rows))
    for failure in failures:
        err.print(f"[red]✗[/red] {failure}", highlight=False)
    if failures:
        raise typer.Exit(1)


# --- register ------------------------------------------------------------------------------------


@providers_app.command("register")
def providers_register(
    location: Annotated[str | None, typer.Option(help="GHL location id")] = None,
    provider: Annotated[str | None, typer.Option(help="nmi or authorize-net")] = None,
    unique_name: Annotated[
        str | None,
        typer.Option(help="lowercase letters and hyphens, starting and ending with a letter"),
    ] = None,
    title: Annotated[str | None, typer.Option(help="shown to the location's users")] = None,
    description: Annotated[str | None, typer.Option(help="a sentence about it")] = None,
    image_url: Annotated[str | None, typer.Option(help="public https:// image URL")] = None,
) -> None:
    """Register a white-label payment provider for a location (asks for what is missing).
    It registers a provider; it moves no money."""
    from wizesync.ghl import models as m
    from wizesync.ghl.errors import GhlError, GhlServerError, GhlTimeout
    from wizesync.ops.providers import (
        WRITE_SCOPE,
        ghl_problem,
        provider_view,
        registration_problems,
    )

    settings = settings_or_exit()
    require_ghl(settings)

    async def known_locations(access: GhlAccess, sessionmaker: Any) -> list[str]:
        return await _locations(settings, sessionmaker)

    installed = run_ghl(settings, known_locations)
    if not installed:
        raise exit_with(
            "no GHL location is installed yet: install the app (`wizesync ghl install-url`)", 1
        )
    if location is None:
        location = typer.prompt(
            "GHL location id", default=installed[0] if len(installed) == 1 else None
        )
    if location not in installed:
        raise exit_with(
            f"location {location} is not configured here; configured: {', '.join(installed)}", 2
        )
    if provider is None:
        provider = typer.prompt("Provider", type=Literal["nmi", "authorize-net"])  # re-asks
    if unique_name is None:
        unique_name = typer.prompt("Unique name (lowercase letters and hyphens)")
    if title is None:
        title = typer.prompt("Title")
    if description is None:
        description = typer.prompt("Description")
    if image_url is None:
        image_url = typer.prompt("Image URL (https://...)")
    problems = registration_problems(
        provider=provider,
        unique_name=unique_name,
        title=title,
        description=description,
        image_url=image_url,
    )
    if problems:
        raise exit_with("; ".join(problems), 2)
    body = m.RegisterWhitelabelProvider(
        provider=provider,
        unique_name=unique_name,
        title=title,
        description=description,
        image_url=image_url,
    )
    where: str = location

    async def register(access: GhlAccess, sessionmaker: Any) -> dict[str, Any]:
        # Look first: GHL refuses a second provider of the same name, and a register whose
        # answer was lost may already have happened.
        try:
            existing = (await access.client.list_whitelabel_providers(where)).items
        except GhlError as exc:
            raise Fail(f"location {where}: {ghl_problem(exc)}") from None
        for p in existing:
            if p.route == unique_name:
                raise Fail(
                    f"location {where} already has a provider named {unique_name} "
                    f"({p.provider}, id {p.id}); nothing changed"
                )
        try:
            created = await access.client.register_whitelabel_provider(where, body)
        except (GhlServerError, GhlTimeout) as exc:
            raise Fail(
                f"GHL did not confirm the registration ({ghl_problem(exc)}): it may or "
                f"may not exist now; check with `wizesync ghl providers list --location "
                f"{where}` before trying again"
            ) from None
        except GhlError as exc:
            raise Fail(f"location {where}: {ghl_problem(exc, scope=WRITE_SCOPE)}") from None
        return provider_view(created)

    created = run_ghl(settings, register)
    console.print(_table([(where, created)]))
    console.print(
        f"[green]✓[/green] registered {created['provider']} provider "
        f"{created['unique_name']} for location {where}",
        highlight=False,
    )
