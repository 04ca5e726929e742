"""`wizesync trigger`: a correctly signed sample event sent to a running service."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from wizesync.cli.common import console, err, settings_or_exit


def trigger(
    event_type: Annotated[
        str, typer.Argument(help="e.g. order.created, refund.requested, OrderCreate, InvoicePaid")
    ],
    url: Annotated[
        str, typer.Option(help="base URL of the running service", envvar="WIZESYNC_URL")
    ] = "http://127.0.0.1:8000",
    order_id: Annotated[str | None, typer.Option(help="order id to use")] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            help="Wizehire secret (default: configured)", envvar="TRIGGER_WIZEHIRE_SECRET"
        ),
    ] = None,
) -> None:
    """Send a correctly signed sample event to a running service, like `stripe trigger`. With a
    sandbox (`make run`'s built-in one, or `wizesync sandbox`) the sample names its location and
    objects it holds (the newest order, Wizehire's newest paid order for a refund)."""
    import httpx

    from wizesync import samples
    from wizesync.signing import ghl_headers, wizehire_headers
    from wizesync.trigger import TriggerError, build

    settings = settings_or_exit()
    try:
        with httpx.Client(timeout=10) as client:
            built = build(
                event_type, settings=settings, service_url=url, order_id=order_id, http=client
            )
    except KeyError:
        err.print(
            f"unknown event type {event_type!r}; one of: "
            + ", ".join(samples.WIZEHIRE_TYPES + samples.GHL_TYPES)
        )
        raise typer.Exit(2) from None
    except (TriggerError, httpx.HTTPError) as exc:
        err.print(f"[red]cannot build the sample:[/red] {exc}")
        raise typer.Exit(1) from None
    body = json.dumps(built.body).encode()
    if built.source == "wizehire":
        key = secret or settings.wizehire_webhook_secrets[0]
        headers, path = wizehire_headers(key, body), "/webhooks/wizehire"
    else:
        headers, path = ghl_headers(body), "/webhooks/ghl"
    if built.note:
        err.print(f"sample: {built.note}")
    try:
        response = httpx.post(url.rstrip("/") + path, content=body, headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        err.print(f"[red]could not reach {url}:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"{response.status_code} {response.text}")
    if response.status_code >= 300:
        raise typer.Exit(1)
