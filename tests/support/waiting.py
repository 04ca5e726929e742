"""Waiting in tests: poll for the condition, never sleep a fixed time and hope.

`eventually` is the one poll loop; `eventually_sync` is the same loop for plain (non-async)
tests that drive subprocesses, and `wait_answering_sync` waits for such a server to answer.
`wait_for_status` is the one way to wait for an inbox event's status: read from the database
(given a sessionmaker) or through the admin API (given a client on the service). Deadlines are
generous because the machine is shared and slow at times; a check that holds returns at once,
so a passing test never waits them out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync.db import inbox_repo
from wizesync.db.models import InboxEvent

T = TypeVar("T")

TIMEOUT = 60.0
INTERVAL = 0.05


def _timed_out(what: str, timeout: float, last: object) -> AssertionError:
    return AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


async def eventually(
    check: Callable[[], Awaitable[T]],
    *,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
    what: str = "the condition",
) -> T:
    """Await `check` until it returns something truthy, and return that; fail with `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout, value)
        await asyncio.sleep(interval)


def eventually_sync(
    check: Callable[[], T],
    *,
    timeout: float = TIMEOUT,
    interval: float = 0.2,
    what: str = "the condition",
) -> T:
    """`eventually` for plain functions (tests that drive subprocesses without an event loop)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout, value)
        time.sleep(interval)


def wait_answering_sync(
    url: str, exited: Callable[[], str | None], *, timeout: float = TIMEOUT
) -> None:
    """Until a server subprocess answers `url` with a 2xx; `exited()` returns the process's
    output once it has exited (None while it runs), and that fails the wait at once."""

    def answering() -> bool:
        if (output := exited()) is not None:
            raise AssertionError(f"the server exited:\n{output}")
        try:
            return httpx.get(url, timeout=2).is_success
        except httpx.HTTPError:
            return False

    eventually_sync(answering, timeout=timeout, what=f"{url} to answer")


Reader = async_sessionmaker[AsyncSession] | httpx.AsyncClient


async def wait_for_status(
    reader: Reader,
    event_id: int,
    *statuses: str,
    timeout: float = TIMEOUT,
    headers: dict[str, str] | None = None,
) -> Any:
    """Until inbox event `event_id` has one of `statuses`. With a sessionmaker the row is read
    from the database and returned (an `InboxEvent`, its attempts loaded); with a client on the
    service it is read from `GET /admin/events/{id}` (`headers` authenticate) and its JSON is
    returned."""
    wanted = {str(s) for s in statuses}
    assert wanted, "name the status to wait for"
    seen: list[str] = []

    async def read() -> Any:
        if isinstance(reader, httpx.AsyncClient):
            response = await reader.get(f"/admin/events/{event_id}", headers=headers)
            row = response.json() if response.status_code == 200 else None
            seen[:] = [row["status"] if row else f"HTTP {response.status_code}"]
            return row if row and row["status"] in wanted else None
        async with reader() as session:
            event = await inbox_repo.get_event(session, event_id)
        assert event is not None, f"no inbox event {event_id}"
        seen[:] = [f"{event.status} ({event.last_error})"]
        return event if event.status in wanted else None

    try:
        return await eventually(read, timeout=timeout, what=f"event {event_id}")
    except AssertionError as exc:
        raise AssertionError(
            f"event {event_id} is {seen[0] if seen else '?'}, not {'/'.join(sorted(wanted))} "
            f"after {timeout:.0f} s"
        ) from exc


async def wait_all_done(
    sessionmaker: async_sessionmaker[AsyncSession], ids: list[int], *, timeout: float = TIMEOUT
) -> list[InboxEvent]:
    """Until every event in `ids` is `done`; the events, in `ids`' order."""

    async def read() -> list[InboxEvent] | None:
        async with sessionmaker() as session:
            events = [await inbox_repo.get_event(session, i) for i in ids]
        not_done = [e for e in events if e is None or e.status != "done"]
        return None if not_done else events  # type: ignore[return-value]

    return await eventually(read, timeout=timeout, what=f"all {len(ids)} events to be done")
