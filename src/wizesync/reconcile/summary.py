"""The Slack summary of a scheduled run: counts, the five worst items, a link to the report.

Queued through the durable outbox (`notify/outbox.py`) in the transaction that marks the run done,
keyed by the run: the run finishes and is announced together, once, even when a resumed run
finishes twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from wizesync.db import reconcile_repo as repo
from wizesync.db.reconcile_models import CATEGORIES, ReconciliationItem, ReconciliationRun
from wizesync.notify.outbox import queue_notice
from wizesync.notify.slack import Notice
from wizesync.reconcile.views import iso


def report_link(public_url: str | None, run_id: int) -> str:
    path = f"/reports/reconciliation/{run_id}"
    if not public_url:
        return f"{path} (set PUBLIC_URL for a full link)"
    return public_url.rstrip("/") + path


def summary_notice(
    run: ReconciliationRun,
    counts: dict[str, int],
    worst: list[ReconciliationItem],
    public_url: str | None,
) -> Notice:
    unreconciled = sum(n for c, n in counts.items() if c != "matched")
    total = sum(counts.values())
    lines = [
        f"window {iso(run.since)} .. {iso(run.until)}: {total} orders, {unreconciled} not matched",
        ", ".join(f"{c} {counts.get(c, 0)}" for c in CATEGORIES if counts.get(c, 0)) or "no orders",
    ]
    if worst:
        lines.append("worst:")
        lines.extend(f"- {describe(item)}" for item in worst)
    lines.append(f"report: {report_link(public_url, run.id)}")
    return Notice(
        title=f"Reconciliation {run.id}: "
        + ("all matched" if unreconciled == 0 else f"{unreconciled} to look at"),
        lines=tuple(lines),
        key=f"reconciliation:{run.id}",
        severity="info" if unreconciled == 0 else "warning",
    )


def describe(item: ReconciliationItem) -> str:
    who = item.wizehire_order_id or f"GHL {item.ghl_location_id}/{item.ghl_order_id}"
    healed = " (heal queued)" if item.healed else ""
    return f"{item.category}: {who}: {item.detail}{healed}"


async def queue_summary(
    session: AsyncSession,
    services: Any,
    run: ReconciliationRun,
    counts: dict[str, int],
    public_url: str | None,
) -> bool:
    worst = await repo.worst_items(session, run.id, limit=5)
    return await queue_notice(session, services, summary_notice(run, counts, worst, public_url))
