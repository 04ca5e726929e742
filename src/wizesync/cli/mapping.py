"""`wizesync mapping check|init` and `wizesync ghl catalog`: from a GHL location to a mapping that
is known to work before the first order depends on it.

Exit codes: 2 for what the operator typed or configured, 1 when the file or GHL says no (a
mapping whose prices GHL does not hold, a file that exists already).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
    from wizesync.ghl.catalog import CatalogLine, PriceCheck
    from wizesync.ghl.factory import GhlAccess
    from wizesync.mapping import Mapping

CATALOG_SCOPE = "products.readonly"

mapping_app = typer.Typer(help="The YAML field mapping (MAPPING_FILE)", no_args_is_help=True)


def _location(settings: Settings, location: str | None) -> str:
    from wizesync.ghl.transport import checked_id

    location = location or settings.ghl_location_id
    if not location:
        raise exit_with("--location is required (no GHL_LOCATION_ID is configured)", 2)
    try:
        checked_id(location, "location id")
    except ValueError as exc:
        raise exit_with(f"--location: {exc}", 2) from None
    return location


def _read_catalog(settings: Settings, location_id: str) -> list[CatalogLine]:
    from wizesync.ghl.catalog import read_catalog
    from wizesync.ghl.errors import GhlError
    from wizesync.ops.providers import ghl_problem

    async def run(access: GhlAccess, sessionmaker: Any) -> list[CatalogLine]:
        try:
            return await read_catalog(access.client, location_id)
        except GhlError as exc:
            raise Fail(f"location {location_id}: {ghl_problem(exc, scope=CATALOG_SCOPE)}") from None

    return run_ghl(settings, run)


def _money(line: Any) -> str:
    return "" if line.amount is None else f"{line.amount:.2f}"


# --- ghl catalog ---------------------------------------------------------------------------------


def ghl_catalog(
    location: Annotated[
        str | None, typer.Option(help="GHL location id (default: GHL_LOCATION_ID)")
    ] = None,
) -> None:
    """List a location's GHL products and prices (the ids a mapping names)."""
    settings = settings_or_exit()
    require_ghl(settings)
    location_id = _location(settings, location)
    lines = _read_catalog(settings, location_id)
    table = Table(
        "product id",
        "product",
        "price id",
        "price",
        "amount",
        "currency",
        "recurring",
        title=f"GHL location {location_id}",
    )
    for line in lines:
        table.add_row(
            line.product_id,
            line.product_name,
            line.price_id or "(no price)",
            line.price_name,
            _money(line),
            line.currency or "",
            line.recurring or "",
        )
    console.print(table)
    if not lines:
        err.print(f"location {location_id} has no products in GHL")


# --- mapping check -------------------------------------------------------------------------------


@mapping_app.command("check")
def mapping_check(
    path: Annotated[str | None, typer.Argument(help="mapping file (default: MAPPING_FILE)")] = None,
    online: Annotated[
        bool,
        typer.Option(
            "--online",
            help="also ask GHL: every mapped price and product exists in each location "
            "orders go to, in the mapped currency",
        ),
    ] = False,
) -> None:
    """Validate a mapping file and print what it resolved to; `--online` checks it against GHL."""
    from wizesync.flows.refunds.executors import check_executor_name, load_executors
    from wizesync.mapping import MappingError, load_mapping

    settings = settings_or_exit()
    source = path or settings.mapping_file
    try:
        mapping = load_mapping(source, default_location=settings.ghl_location_id)
    except MappingError as exc:
        err.print(f"[red]✗[/red] {exc}")
        raise typer.Exit(1) from None
    known = load_executors()
    unknown_executor = check_executor_name(mapping.refunds.executor)
    if unknown_executor:
        err.print(f"[red]✗[/red] refunds.executor: {unknown_executor}")
        raise typer.Exit(1)
    console.print(f"[green]✓[/green] {source or 'built-in defaults'} is valid")
    console.print_json(mapping.model_dump_json())
    console.print(f"refund executors this build knows: {', '.join(known)}", highlight=False)
    if online:
        _check_online(settings, mapping)


def _check_online(settings: Settings, mapping: Mapping) -> None:
    from wizesync.ghl.catalog import check_mapping, mapped_locations
    from wizesync.ghl.errors import GhlError
    from wizesync.ops.providers import ghl_problem

    require_ghl(settings)
    if not mapped_locations(mapping):
        raise exit_with(
            "the mapping routes no order anywhere: set locations.default or "
            "locations.accounts (or GHL_LOCATION_ID)",
            1,
        )
    if not mapping.products:
        raise exit_with("the mapping maps no SKU (products is empty): every order would go dead", 1)

    async def run(access: GhlAccess, sessionmaker: Any) -> list[PriceCheck]:
        try:
            return await check_mapping(access.client, mapping)
        except GhlError as exc:
            raise Fail(f"GHL could not be asked: {ghl_problem(exc, scope=CATALOG_SCOPE)}") from None

    checks = run_ghl(settings, run)
    table = Table("SKU", "location", "price id", "product id", "amount", "currency", "in GHL")
    for check in checks:
        table.add_row(
            check.sku,
            check.location_id,
            check.price_id,
            check.product_id,
            _money(check),
            check.currency or "",
            "[green]✓[/green]" if check.ok else "[red]✗[/red]",
        )
    console.print(table)
    bad = [c for c in checks if not c.ok]
    for check in bad:
        err.print(
            f"[red]✗[/red] {check.sku} in location {check.location_id}: {check.problem}",
            highlight=False,
        )
    if bad:
        raise typer.Exit(1)
    console.print(f"[green]✓[/green] every mapped price exists in GHL ({len(checks)} checked)")


# --- mapping init --------------------------------------------------------------------------------


@mapping_app.command("init")
def mapping_init(
    location: Annotated[
        str | None, typer.Option(help="GHL location id (default: GHL_LOCATION_ID)")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="file to write")] = Path(
        "mapping.yaml"
    ),
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
) -> None:
    """Write a starting mapping from a location's GHL products and prices: one SKU per price,
    named after the product (rename them to Wizehire's SKUs), every other key commented."""
    from wizesync.mapping import MappingError, load_mapping
    from wizesync.mapping_template import render_init

    settings = settings_or_exit()
    if output.exists() and not force:
        raise exit_with(f"{output} exists already; pass --force to overwrite it", 1)
    require_ghl(settings)
    location_id = _location(settings, location)
    lines = _read_catalog(settings, location_id)
    text = render_init(location_id, lines)
    output.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and validated before it replaces anything.
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        load_mapping(tmp)
        os.replace(tmp, output)
    except MappingError as exc:
        raise exit_with(f"the generated mapping does not validate: {exc}", 1) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    priced = sum(1 for line in lines if line.price_id)
    console.print(
        f"[green]✓[/green] wrote {output}: location {location_id}, {priced} "
        f"price(s). Rename the SKUs to Wizehire's, then `wizesync mapping check "
        f"{output} --online` and set MAPPING_FILE={output}",
        highlight=False,
    )
    if not priced:
        err.print(
            f"location {location_id} has no priced products in GHL: add the products "
            "Wizehire sells there first"
        )
