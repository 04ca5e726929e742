"""Prometheus metrics. Counters live in the process that counts them; the queue, flow, GHL budget,
install and poller gauges are read from the database at scrape time (`ops/metrics_scrape.py`),
so any API replica reports the whole system. `deploy/prometheus/alerts.yml` and
`deploy/grafana/wizesync.json` use these names (a test holds them to the real /metrics).

A flow is `source:type` (as in `/sync-status`): its outcomes and latency are
`wizesync_event_attempts_total` and `wizesync_event_handler_seconds` by `source`, `type` and
`outcome` (done, retry, dead), and `wizesync_flow_events_24h` from the database."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter, Gauge, Histogram

WEBHOOKS = Counter(
    "wizesync_webhooks_total",
    "Webhook requests by source and outcome "
    "(accepted, duplicate, ignored, quarantined, rejected, unavailable)",
    ["source", "outcome", "reason"],
)
QUEUE_DEPTH = Gauge("wizesync_queue_events", "Inbox events by status", ["status"])
QUEUE_OLDEST_AGE = Gauge(
    "wizesync_queue_oldest_age_seconds", "Age of the oldest queued or retrying event"
)
PICKUP_LATENCY = Histogram(
    "wizesync_event_pickup_seconds",
    "From receipt to the start of an attempt",
    ["source"],
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
HANDLER_DURATION = Histogram(
    "wizesync_event_handler_seconds",
    "How long an attempt ran",
    ["source", "type", "outcome"],
)
ATTEMPTS = Counter(
    "wizesync_event_attempts_total", "Attempts by outcome", ["source", "type", "outcome"]
)
LEASES_EXPIRED = Counter(
    "wizesync_leases_expired_total", "Events re-queued because their worker stopped answering"
)

# --- read from the database at scrape time (`ops/metrics_scrape.py`): every replica reports the
# whole system, whichever process did the work --------------------------------------------------
FLOW_EVENTS_24H = Gauge(
    "wizesync_flow_events_24h",
    "Attempts finished in the last 24 h per flow (source:type), by outcome (success: done; "
    "failure: retry, dead or lost)",
    ["flow", "outcome"],
)
FLOW_LAST_SUCCESS = Gauge(
    "wizesync_flow_last_success_timestamp_seconds",
    "When the flow (source:type) last finished an event successfully (Unix time)",
    ["flow"],
)
GHL_BUDGET_LIMIT = Gauge(
    "wizesync_ghl_budget_limit", "GHL requests allowed per window, per location", ["location_id"]
)
GHL_BUDGET_REMAINING = Gauge(
    "wizesync_ghl_budget_remaining",
    "GHL requests left in the current window, per location (all processes together)",
    ["location_id"],
)
GHL_BUDGET_PAUSED = Gauge(
    "wizesync_ghl_budget_paused_seconds",
    "Seconds left of a pause GHL imposed (a 429 or an empty daily budget), per location",
    ["location_id"],
)
GHL_DAILY_REMAINING = Gauge(
    "wizesync_ghl_daily_remaining",
    "GHL's X-RateLimit-Daily-Remaining as last seen, per location",
    ["location_id"],
)
GHL_NEEDS_REAUTH = Gauge(
    "wizesync_ghl_needs_reauth",
    "1 when a GHL install must be re-authorised by a human (events for it wait)",
    ["location_id"],
)
POLLER_LAST_SUCCESS = Gauge(
    "wizesync_poller_last_success_timestamp_seconds",
    "When the GHL poller last finished a run for the location (Unix time)",
    ["location_id"],
)
UNMATCHED_GHL_ORDERS = Gauge(
    "wizesync_unmatched_ghl_orders", "GHL orders no Wizehire order is linked to"
)

# --- counted by the process that does the work (the API with WORKER=inprocess, else the worker's
# own metrics port: `wizesync worker --metrics-port`) ---------------------------------------------
GHL_RESPONSES = Counter(
    "wizesync_ghl_responses_total",
    "GHL API answers by HTTP status ('error': no answer: timeout or connection failure)",
    ["status"],
)
GHL_REQUEST_DURATION = Histogram(
    "wizesync_ghl_request_seconds",
    "GHL API call duration (one HTTP request; retries are separate requests)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# --- set by a reconciliation run ------------------------------------------------------------------
RECONCILIATION_CATEGORIES = (
    "missing_in_ghl",
    "missing_in_wizehire",
    "currency_mismatch",
    "amount_mismatch",
    "refund_mismatch",
    "status_mismatch",
    "fulfillment_missing",
    "matched",
)
RECONCILIATION_ITEMS = Gauge(
    "wizesync_reconciliation_items",
    "Orders of the last finished reconciliation run, by category",
    ["category"],
)
RECONCILIATION_FINISHED = Gauge(
    "wizesync_reconciliation_last_finished_timestamp_seconds",
    "When the last reconciliation run finished (Unix time)",
)


def set_reconciliation_counts(counts: Mapping[str, int], finished_at: float | None = None) -> None:
    """A finished run's counts: every contract category is set (0 when absent), so a category
    that went back to zero does not keep the previous run's value; unknown ones are kept too."""
    for category in (*RECONCILIATION_CATEGORIES, *counts):
        RECONCILIATION_ITEMS.labels(category=category).set(counts.get(category, 0))
    if finished_at is not None:
        RECONCILIATION_FINISHED.set(finished_at)
