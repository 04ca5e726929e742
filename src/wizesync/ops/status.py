"""What `/sync-status` and `wizesync events` report, computed from the database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

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
                "error": (event.last_error or "").splitlines()[0][:200] if event.last_error
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
