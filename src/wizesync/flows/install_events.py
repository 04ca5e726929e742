"""GHL's INSTALL and UNINSTALL webhooks keep the installations table current.

Tokens come only from the OAuth callback (or an agency's minting); these events say whether the
app is installed at all. UNINSTALL drops the location's tokens at once: they are dead at GHL.
Deliveries can come late or twice, so an event older than the row's last change is ignored.
Only events naming our own app (`GHL_APP_ID`) count: GHL signs every app's install events with
the same key, so another app's UNINSTALL (or a forged one) must not drop our tokens.
"""

from __future__ import annotations

import logging
from datetime import datetime

from wizesync.db import install_repo
from wizesync.db.models import Source
from wizesync.ghl.webhook_events import AppInstallEvent, delivery_timestamp
from wizesync.inbox.context import EventContext, PermanentFailure
from wizesync.inbox.registry import registry

log = logging.getLogger(__name__)


def _parse(ctx: EventContext) -> tuple[AppInstallEvent, datetime]:
    try:
        event = AppInstallEvent.model_validate(ctx.event.payload)
    except ValueError as exc:
        raise PermanentFailure(f"unreadable {ctx.event.type} event: {exc}") from None
    ours = ctx.settings.ghl_app_id
    if not ours:
        raise PermanentFailure(
            f"{ctx.event.type} not applied: GHL_APP_ID is not set, so the "
            "service cannot tell its own app's installs from another's "
            "(set it, then replay this event)"
        )
    if event.app_id != ours:
        raise PermanentFailure(
            f"{ctx.event.type} is for app {event.app_id!r}, not ours ({ours!r}); not applied"
        )
    if event.location_id is None and event.company_id is None:
        raise PermanentFailure(f"{ctx.event.type} names neither a location nor a company")
    return event, delivery_timestamp(ctx.event.payload) or ctx.event.received_at


@registry.on(Source.GHL, "INSTALL")
async def on_install(ctx: EventContext) -> None:
    event, at = _parse(ctx)
    async with ctx.unit_of_work() as session:
        await install_repo.record_install_event(
            session,
            location_id=event.location_id,
            # An agency-level install (no location) is the company's own row.
            company_id=event.company_id,
            app_id=event.app_id,
            at=at,
        )
    log.info(
        "GHL app installed",
        extra={"location_id": event.location_id, "company_id": event.company_id},
    )


@registry.on(Source.GHL, "UNINSTALL")
async def on_uninstall(ctx: EventContext) -> None:
    event, at = _parse(ctx)
    async with ctx.unit_of_work() as session:
        changed = await install_repo.record_uninstall(
            session,
            location_id=event.location_id,
            company_id=None if event.location_id else event.company_id,
            at=at,
        )
    log.info(
        "GHL app uninstalled",
        extra={"location_id": event.location_id, "company_id": event.company_id, "rows": changed},
    )
