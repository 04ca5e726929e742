"""Scripted test events and the run records their handler leaves behind, across processes.

An event's payload carries a script under `SCRIPT_FIELD`, e.g.
`{"log": "/tmp/x/runs.log", "sleep": 0.5, "hang_on_attempts": [1], "seq": 7}`; the handler in
`tests.support.handlers` (imported by worker subprocesses only) follows it and appends one JSON
line per phase (`start`, `end`, `cancelled`) to the log. Each line is a single `O_APPEND` write
followed by `fsync`, so lines from several processes never interleave and a SIGKILL right after a
`start` still leaves it on disk.

This module registers nothing: the test process imports it without touching the handler registry.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync import samples
from wizesync.db import inbox_repo
from wizesync.db.inbox_repo import NewEvent
from wizesync.db.models import EventStatus, InboxEvent

SCRIPT_FIELD = "wizesync_test_script"
# Queued straight into the inbox by the worker tests; a type no real flow will ever claim.
DIRECT_SOURCE, DIRECT_TYPE = "ghl", "WizesyncTestStep"
# Sent over HTTP by the service tests: a GHL type the service queues and no flow handles yet.
HTTP_SOURCE, HTTP_TYPE = "ghl", "InvoiceCreate"
HANG_SECONDS = 3600.0


def script(
    log: Path, *, sleep: float = 0.0, hang_on_attempts: tuple[int, ...] = (), seq: int | None = None
) -> dict[str, Any]:
    return {"log": str(log), "sleep": sleep, "hang_on_attempts": list(hang_on_attempts), "seq": seq}


def direct_event(key: str, steps: dict[str, Any]) -> NewEvent:
    """A queued event for `inbox_repo.insert_event`, bypassing HTTP (the worker tests)."""
    payload = {"type": DIRECT_TYPE, SCRIPT_FIELD: steps}
    return NewEvent(
        source=DIRECT_SOURCE,
        event_id=f"test_{secrets.token_hex(8)}",
        type=DIRECT_TYPE,
        ordering_key=f"test:{key}",
        status=EventStatus.QUEUED,
        raw_body=json.dumps(payload).encode(),
        payload=payload,
    )


def http_event(key: str, steps: dict[str, Any]) -> dict[str, Any]:
    """A GHL webhook body (sign it with `tests.support.signing.ghl_request`)."""
    return {**samples.ghl_event(HTTP_TYPE, object_id=key), SCRIPT_FIELD: steps}


def append_record(path: str, record: dict[str, Any]) -> None:
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Run:
    phase: str  # start | end | cancelled
    inbox_id: int
    key: str | None
    attempt: int
    pid: int
    seq: int | None
    t: int  # time.time_ns(): one machine, so one clock for every process


def read_runs(path: Path) -> list[Run]:
    """Every record so far, in file order; a torn last line (writer killed) is skipped."""
    if not path.exists():
        return []
    runs = []
    for line in path.read_text().splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue
        runs.append(Run(**{name: data.get(name) for name in Run.__dataclass_fields__}))
    return runs


def now_ns() -> int:
    return time.time_ns()


# --- the inbox as the test process sees it ------------------------------------------------------


async def queue_events(
    sessionmaker: async_sessionmaker[AsyncSession], *events: NewEvent
) -> list[int]:
    """Insert queued events in one transaction; their inbox ids, in arrival order."""
    async with sessionmaker.begin() as session:
        ids = [await inbox_repo.insert_event(session, event) for event in events]
    assert all(ids), "an event id collided"
    return [int(i) for i in ids if i is not None]


async def load_event(sessionmaker: async_sessionmaker[AsyncSession], inbox_id: int) -> InboxEvent:
    """The event with its attempt log."""
    async with sessionmaker() as session:
        event = await inbox_repo.get_event(session, inbox_id)
    assert event is not None, f"no inbox event {inbox_id}"
    return event


async def load_events(sessionmaker: async_sessionmaker[AsyncSession]) -> list[InboxEvent]:
    """Every event (oldest first), without bodies."""
    async with sessionmaker() as session:
        return sorted(await inbox_repo.list_events(session, limit=10_000), key=lambda e: e.id)


def ran_by(worker_id: str | None, pid: int) -> bool:
    """Worker ids are `host:pid:random`."""
    return worker_id is not None and worker_id.split(":")[-2] == str(pid)
