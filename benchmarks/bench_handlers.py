"""No-op handlers for the benchmark's events, so the in-process worker really claims and runs them.

The benchmark starts the service with `WORKER_HANDLER_MODULES=bench_handlers` and `benchmarks/`
on `PYTHONPATH`. When `BENCH_PICKUP_LOG` names a file, the start of every pickup-phase event
(webhook-id starting `msg_pickup_`) appends `<webhook-id> <time.time()>` to it: with the send
times the load generator keeps, that is the POST -> handler start latency, on the one clock both
processes share. Throughput-phase events write nothing, so they cost the worker nothing extra.
"""

from __future__ import annotations

import os
import time
from typing import IO

from wizesync.inbox.context import EventContext
from wizesync.inbox.registry import registry

PICKUP_PREFIX = "msg_pickup_"  # as in ingest.py
_log: IO[str] | None = None


def _pickup_log() -> IO[str] | None:
    global _log
    path = os.environ.get("BENCH_PICKUP_LOG")
    if _log is None and path:
        # Line-buffered and left open for the life of the process.
        _log = open(path, "a", buffering=1, encoding="utf-8")
    return _log


BENCH_TYPE = ("wizehire", "order.created")  # the only type the benchmark posts


async def started(ctx: EventContext) -> None:
    now = time.time()
    log = _pickup_log() if ctx.event.event_id.startswith(PICKUP_PREFIX) else None
    if log is not None:
        log.write(f"{ctx.event.event_id} {now:.6f}\n")


# The service's own orders flow handles order.created (it would call GHL and Wizehire); the
# benchmark measures the inbox and the queue, so its no-op handler takes that type's place.
registry.replace(*BENCH_TYPE, started)  # in place of the orders flow
