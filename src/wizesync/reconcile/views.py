"""JSON of runs and items exactly as the contract's "Reconciliation" section shows them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from wizesync.db.reconcile_models import CATEGORIES, ReconciliationItem, ReconciliationRun


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def counts_json(counts: dict[str, int] | None) -> dict[str, int]:
    """Every category, in the contract's order, zeros included."""
    counts = counts or {}
    return {category: int(counts.get(category, 0)) for category in CATEGORIES}


def run_json(run: ReconciliationRun) -> dict[str, Any]:
    """A run without its items."""
    return {
        "id": run.id,
        "status": run.status,
        "trigger": run.trigger,
        "heal": run.heal,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "window": {"since": iso(run.since), "until": iso(run.until)},
        "counts": counts_json(run.counts),
        "error": run.error,
    }


def item_json(item: ReconciliationItem) -> dict[str, Any]:
    return {
        "category": item.category,
        "wizehire_order_id": item.wizehire_order_id,
        "ghl_order_id": item.ghl_order_id,
        "ghl_location_id": item.ghl_location_id,
        "wizehire": item.wizehire,
        "ghl": item.ghl,
        "detail": item.detail,
        "healed": bool(item.healed),
    }
