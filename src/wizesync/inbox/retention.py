"""Retention: finished events are deleted after `RETENTION_DAYS`, a small batch at a time.

Raw webhook bodies are customer data; with `RETENTION_DAYS` set, `done` and `ignored` events
(their attempt rows with them) older than that are deleted once a day by a task beside the
worker, and on demand by `wizesync events purge --older-than 30d`. `dead` and `quarantined`
events stay until replayed or purged by id. Batches are short transactions on rows the queue
never reads, with a pause between them, so the queue never waits for a purge.

Dedupe holds for the retention period only: the inbox knows a webhook by (source, event_id) as
long as its row exists, so a redelivery after its original was deleted is stored and handled as
new. The handlers are idempotent against GHL and Wizehire (they look before they create), so a
late duplicate finds its work done; keep RETENTION_DAYS well above the senders' retry windows
(days, not hours).
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync.db import retention_repo
from wizesync.db.base import utcnow

log = logging.getLogger(__name__)

BATCH = 500
PAUSE_SECONDS = 0.05
DAY_SECONDS = 86_400.0


async def purge_older_than(
    sessionmaker: async_sessionmaker[AsyncSession],
    age: timedelta,
    *,
    batch: int = BATCH,
    pause: float = PAUSE_SECONDS,
) -> int:
    """Delete every done or ignored event older than `age`, `batch` at a time; how many."""
    before = utcnow() - age
    total = 0
    while True:
        async with sessionmaker.begin() as session:
            deleted = await retention_repo.purge_aged_batch(session, before=before, limit=batch)
        total += deleted
        if deleted < batch:
            return total
        await asyncio.sleep(pause)


async def run_retention(
    sessionmaker: async_sessionmaker[AsyncSession],
    days: int,
    *,
    interval: float = DAY_SECONDS,
    first_delay: float | None = None,
) -> None:
    """Purge now (after a short random delay, so replicas do not start together), then every
    `interval` seconds; until cancelled with the worker. Failures are logged and retried at the
    next round."""
    if first_delay is None:
        first_delay = random.uniform(1.0, 30.0)  # noqa: S311  (spreading, not crypto)
    await asyncio.sleep(first_delay)
    while True:
        try:
            deleted = await purge_older_than(sessionmaker, timedelta(days=days))
            log.info("retention purge", extra={"deleted": deleted, "retention_days": days})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("retention purge failed; next round tries again", exc_info=exc)
        await asyncio.sleep(interval)
