"""`wizesync_reconciliation_items{category}`: the last finished run's counts, per process that
finished it (and `/sync-status` reads the same counts from the database)."""

from __future__ import annotations

from prometheus_client import Gauge

from wizesync.db.reconcile_models import CATEGORIES
from wizesync.ops import metrics as ops_metrics

NAME = "wizesync_reconciliation_items"


def _gauge() -> Gauge:
    # The operators' metrics module may define it; one collector per name in a registry.
    for value in vars(ops_metrics).values():
        if isinstance(value, Gauge) and value._name == NAME:
            return value
    return Gauge(NAME, "Items of the last finished reconciliation run, by category", ["category"])


RECONCILIATION_ITEMS = _gauge()


def record_counts(counts: dict[str, int]) -> None:
    for category in CATEGORIES:
        RECONCILIATION_ITEMS.labels(category=category).set(counts.get(category, 0))
