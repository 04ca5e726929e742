"""Timing spans inside `wizesync serve`, for `benchmarks/flows_breakdown.py` (measurement only).

`install(path)` wraps the functions on an order's path (intake, claim, the handler's steps and
saves, each GHL call's budget reservation and HTTP round trip, every SQL statement and commit)
so that each call appends one JSON line to `path`: name, asyncio task, wall-clock start and
duration in ms. The service is otherwise unchanged; the wrappers cost a few microseconds each.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from typing import Any

_out: Any = None


def _task() -> str:
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return "-"
    return task.get_name() if task else "-"


def emit(name: str, start: float, ms: float, **extra: Any) -> None:
    _out.write(
        json.dumps({"n": name, "t": _task(), "s": start, "ms": round(ms, 3), **extra}) + "\n"
    )


def _wrap_async(owner: Any, attr: str, name: str, extra: Any = None) -> None:
    original = getattr(owner, attr)

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        start, t0 = time.time(), time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            emit(
                name,
                start,
                (time.perf_counter() - t0) * 1000,
                **(extra(*args, **kwargs) if extra else {}),
            )

    setattr(owner, attr, wrapper)


def install(path: str) -> None:
    global _out
    _out = open(path, "a", buffering=1)

    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio.session import AsyncSessionTransaction

    from wizesync.db import inbox_repo, sync_repo
    from wizesync.flows import orders
    from wizesync.ghl import ratelimit, transport
    from wizesync.inbox import ingest, worker

    _wrap_async(ingest, "store", "intake.store")
    _wrap_async(inbox_repo, "claim_due", "worker.claim_due")
    _wrap_async(
        worker.Worker,
        "_run",
        "worker.run",
        lambda self, ev: {
            "event": ev.id,
            "type": ev.type,
            "source": ev.source,
            "received": ev.received_at.timestamp(),
        },
    )
    _wrap_async(worker.Worker, "_finish", "worker.finish")
    _wrap_async(sync_repo, "set_fields", "sync_repo.set_fields")
    _wrap_async(ratelimit.DbRateLimiter, "acquire", "ghl.acquire")
    _wrap_async(ratelimit.DbRateLimiter, "observe", "ghl.observe")
    _wrap_async(ratelimit.DbRateLimiter, "flush", "ghl.flush")
    _wrap_async(
        transport.GhlTransport,
        "_send",
        "ghl.send",
        lambda self, loc, method, path, *a, **k: {"call": f"{method} {path}"},
    )
    for step in (
        "load",
        "save",
        "route",
        "contact",
        "resolve_order",
        "create_invoice",
        "record_payment",
        "find_invoice_order",
        "fulfill",
        "fetch_ghl_order",
        "sync_state",
        "invoice",
        "match",
        "find_invoice",
    ):
        if hasattr(orders._OrderRun, step):
            _wrap_async(orders._OrderRun, step, f"order.{step}")
    _wrap_async(orders, "handle_order_event", "order.handler")
    _wrap_async(AsyncSessionTransaction, "commit", "db.commit")

    @event.listens_for(Engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info["wizesync_trace"] = (time.time(), time.perf_counter())

    @event.listens_for(Engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        start, t0 = conn.info.pop("wizesync_trace", (time.time(), time.perf_counter()))
        words = statement.split()
        kind = " ".join(words[:2]) if words[:1] == ["BEGIN"] else words[0] if words else "?"
        table = next((w for w in words[1:12] if w.islower() and "_" in w and "." not in w), "")
        emit("db.sql", start, (time.perf_counter() - t0) * 1000, sql=f"{kind} {table}".strip())
