"""What `/sync-status` and `wizesync events` report, computed from the database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from wizesync.config import Settings
from wizesync.db import inbox_repo
from wizesync.db.base import utcnow


async def queue_summary(session: AsyncSession) -> dict[str, Any]:
    counts = await inbox_repo.queue_counts(session)
    oldest = await inbox_repo.oldest_waiting_received_at(session)
    age = (utcnow() - oldest).total_seconds() if oldest else 0.0
    return {"counts": counts, "oldest_queued_age_seconds": round(max(age, 0.0), 3)}


async def dead_letter_summary(session: AsyncSession) -> dict[str, Any]:
    counts = await inbox_repo.queue_counts(session)
    newest = await inbox_repo.newest_dead(session, limit=20)
    return {
        "count": counts.get("dead", 0),
        "newest": [
            {
                "id": event.id,
                "source": event.source,
                "type": event.type,
                "attempts": event.attempts,
                "died_at": event.handled_at,
                # The first line only: errors can quote payloads, and this list is for triage.
                "error": (event.last_error or "").splitlines()[0][:200]
                if event.last_error
                else None,
            }
            for event in newest
        ],
    }


async def flow_summary(session: AsyncSession) -> dict[str, Any]:
    since = utcnow() - timedelta(hours=24)
    flows = {}
    for row in await inbox_repo.flow_stats(session, since):
        flows[f"{row['source']}:{row['type']}"] = {
            "last_success_at": row["last_success_at"],
            "successes_24h": row["successes_24h"],
            "failures_24h": row["failures_24h"],
        }
    return flows


async def installation_summary(session: AsyncSession, settings: Settings) -> list[dict[str, Any]]:
    """Per GHL location (and agency install): auth mode, token expiry, whether a human must
    re-authorise, and the rate budget's headroom. Never a token."""
    from wizesync.db import install_repo
    from wizesync.ghl.ratelimit import headroom

    budgets = await headroom(session, settings)

    def rate(location_id: str | None) -> dict[str, Any] | None:
        if location_id is None:
            return None
        h = budgets.get(location_id)
        if h is None:
            return {
                "limit": settings.ghl_rate_limit_max,
                "window_seconds": settings.ghl_rate_limit_window_seconds,
                "used_in_window": 0,
                "remaining": settings.ghl_rate_limit_max,
                "paused_for_seconds": 0.0,
                "daily_remaining": None,
            }
        return {
            "limit": h.limit,
            "window_seconds": h.window_seconds,
            "used_in_window": h.used_in_window,
            "remaining": h.remaining,
            "paused_for_seconds": h.paused_for_seconds,
            "daily_remaining": h.daily_remaining,
        }

    out: list[dict[str, Any]] = []
    if settings.ghl_private_token is not None and settings.ghl_location_id:
        out.append(
            {
                "location_id": settings.ghl_location_id,
                "kind": "location",
                "auth_mode": "pit",
                "token_expires_at": None,
                "needs_reauth": False,
                "rate_limit": rate(settings.ghl_location_id),
            }
        )
    for row in await install_repo.list_installations(session):
        out.append(
            {
                "location_id": row.location_id,
                "company_id": row.company_id,
                "kind": "location" if row.location_id else "agency",
                "auth_mode": row.auth_mode,
                "token_source": _token_source(row),
                "token_expires_at": row.expires_at,
                "needs_reauth": row.needs_reauth,
                "reauth_reason": row.reauth_reason,
                "reauth_at": row.reauth_at,
                "inactive_until": row.inactive_until,
                "installed_at": row.installed_at,
                "uninstalled_at": row.uninstalled_at,
                "rate_limit": rate(row.location_id),
            }
        )
    return out


def _token_source(row: Any) -> str:
    """own: the row refreshes itself; agency: its agency mints it; none: nothing to use."""
    if row.uninstalled_at is not None and row.access_token_enc is None:
        return "none"
    if row.refresh_token_enc is not None:
        return "own"
    if row.location_id is not None and row.company_id is not None:
        return "agency"
    return "none"


async def poller_summary(session: AsyncSession) -> dict[str, Any]:
    """Per GHL location: the poller's last run and success, cursors, counts, last error, whether
    a process holds it now; and how many GHL orders no Wizehire order knows (no customer data)."""
    from wizesync.db import poller_repo

    now = utcnow()
    return {
        "locations": [
            {
                "location_id": row.location_id,
                "last_run_at": row.last_run_at,
                "last_success_at": row.last_success_at,
                "transactions_cursor": row.transactions_cursor,
                "subscriptions_cursor": row.subscriptions_cursor,
                "counts": row.last_counts or {},
                "last_error": row.last_error,
                "polling_now": row.lease_owner is not None
                and row.lease_expires_at is not None
                and row.lease_expires_at > now,
            }
            for row in await poller_repo.list_states(session)
        ],
        "unmatched_ghl_orders": await poller_repo.count_unmatched(session),
    }


async def add_whitelabel_providers(
    installations: list[dict[str, Any]], directory: Any | None
) -> list[dict[str, Any]]:
    """Each location's white-label provider(s), from `ProviderDirectory` (cached reads of GHL).
    Never raises: what GHL cannot tell us right now is "unknown" with the reason."""
    callable_ids = [
        e["location_id"]
        for e in installations
        if e.get("location_id") and e.get("token_source", "own") != "none"
    ]
    found = await directory.lookup(callable_ids) if directory is not None and callable_ids else {}
    for entry in installations:
        location_id = entry.get("location_id")
        if not location_id:
            continue  # an agency row: providers belong to locations
        if location_id in found:
            entry["whitelabel_provider"] = found[location_id]
        elif directory is None:
            entry["whitelabel_provider"] = {
                "status": "unknown",
                "checked_at": None,
                "reason": "this process does not read GHL",
            }
        else:
            entry["whitelabel_provider"] = {
                "status": "unknown",
                "checked_at": None,
                "reason": "no usable token: the app is uninstalled or was never authorised here",
            }
    return installations


async def reconciliation_summary(session: AsyncSession) -> dict[str, Any] | None:
    """The last finished reconciliation run: id, when, window, counts by category."""
    from wizesync.db import reconcile_repo
    from wizesync.reconcile.views import counts_json, iso

    run = await reconcile_repo.last_finished_run(session)
    if run is None:
        return None
    return {
        "id": run.id,
        "finished_at": iso(run.finished_at),
        "window": {"since": iso(run.since), "until": iso(run.until)},
        "counts": counts_json(run.counts),
    }
