"""Handlers for worker subprocesses: `WORKER_HANDLER_MODULES=tests.support.handlers`.

Importing this module registers them on the default registry, so only subprocesses import it;
the test process uses `tests.support.scripted` (same formats, no registration). The handler does
what the event's script says: sleep, or hang on given attempts (until killed or cancelled), and
records its start and end durably so the test can reconstruct who ran what, when.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from tests.support.scripted import (
    DIRECT_SOURCE,
    DIRECT_TYPE,
    HANG_SECONDS,
    HTTP_SOURCE,
    HTTP_TYPE,
    SCRIPT_FIELD,
    append_record,
    now_ns,
)
from wizesync.inbox.context import EventContext
from wizesync.inbox.registry import registry


async def run_script(ctx: EventContext) -> None:
    event = ctx.event
    payload: dict[str, Any] = event.payload if isinstance(event.payload, dict) else {}
    steps: dict[str, Any] = payload.get(SCRIPT_FIELD) or {}
    log = steps.get("log")
    record = {
        "inbox_id": event.id,
        "key": event.ordering_key,
        "attempt": event.attempt,
        "pid": os.getpid(),
        "seq": steps.get("seq"),
    }

    def note(phase: str) -> None:
        if log:
            append_record(log, {**record, "phase": phase, "t": now_ns()})

    note("start")
    hang = event.attempt in steps.get("hang_on_attempts", [])
    try:
        await asyncio.sleep(HANG_SECONDS if hang else float(steps.get("sleep") or 0))
    except asyncio.CancelledError:
        note("cancelled")  # the worker's shutdown grace ran out
        raise
    note("end")


registry.add(DIRECT_SOURCE, DIRECT_TYPE, run_script)
registry.replace(HTTP_SOURCE, HTTP_TYPE, run_script)  # stands in for the built-in no-op
