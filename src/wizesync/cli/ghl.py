"""`wizesync ghl install-url|catalog|providers`: HighLevel from the shell."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from wizesync.cli.common import console, err, settings_or_exit, with_session
from wizesync.cli.mapping import ghl_catalog
from wizesync.cli.providers import providers_app

ghl_app = typer.Typer(
    help="HighLevel: the install link, catalog, white-label providers", no_args_is_help=True
)
ghl_app.add_typer(providers_app, name="providers")
ghl_app.command("catalog")(ghl_catalog)


@ghl_app.command("install-url")
def ghl_install_url(
    user_type: Annotated[
        str, typer.Option(help="Location (sub-account install) or Company (agency install)")
    ] = "Location",
) -> None:
    """Print a GHL install link with a fresh one-time state (valid 10 minutes, usable once)."""
    from wizesync.ghl.installs import STATE_TTL, new_state
    from wizesync.ghl.oauth import authorize_url

    if user_type not in ("Location", "Company"):
        err.print("--user-type is Location or Company")
        raise typer.Exit(2)
    settings = settings_or_exit()
    if not (settings.ghl_client_id and settings.ghl_redirect_uri):
        err.print(
            "[red]OAuth mode is not configured:[/red] set GHL_CLIENT_ID, "
            "GHL_CLIENT_SECRET and GHL_REDIRECT_URI (the app's redirect URI, "
            "https://<this service>/oauth/ghl/callback)"
        )
        raise typer.Exit(2)

    async def run(sessionmaker: Any) -> str:
        async with sessionmaker.begin() as session:
            return await new_state(session, user_type)

    state = asyncio.run(with_session(run))
    console.print(authorize_url(settings, state), soft_wrap=True, highlight=False)
    minutes = int(STATE_TTL.total_seconds() // 60)
    err.print(f"valid for {minutes} minutes, once.")
    if settings.ghl_redirect_uri.endswith("/oauth/ghl/callback"):
        stable = settings.ghl_redirect_uri.removesuffix("/callback") + "/install"
        err.print(f"A link that never expires (it makes a fresh state each time): {stable}")
