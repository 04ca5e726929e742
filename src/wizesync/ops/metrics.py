"""Prometheus metrics. Counters live in the process that counts them; the queue gauges are read
from the database at scrape time, so any API replica reports the whole queue."""

from __future__ import annotations

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
