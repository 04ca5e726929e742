"""PostgreSQL goes away under a running `wizesync serve`: webhooks answer 503 with Retry-After (or
succeed), never 500 and never hang; once it is back everything recovers and no accepted event is
lost.

Two faults, neither touching the shared server: `pg_terminate_backend` on every connection to this
session's database, and a TCP proxy between the service and PostgreSQL that is stopped (listener
closed, connections cut) and started again on the same port.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.processes import Spawner, TcpProxy, terminate_backends, via_proxy
from tests.support.scripted import (
    direct_event,
    http_event,
    load_event,
    load_events,
    queue_events,
    read_runs,
    script,
)
from tests.support.signing import ghl_request
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

Sessionmaker = async_sessionmaker[AsyncSession]
# Longer than the service may take to say 503 (5 s connect timeout, 10 s pool timeout).
REQUEST_TIMEOUT = 20.0


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


@pytest.fixture
def spawner(tmp_path: Path) -> Iterator[Spawner]:
    spawner = Spawner(tmp_path)
    yield spawner
    spawner.close()


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    proxy = TcpProxy.to(database_url)
    proxy.start()
    yield proxy
    proxy.close()


class Sender:
    """Posts signed GHL webhooks and keeps what the service said about each."""

    def __init__(self, client: httpx.AsyncClient, runs: Path) -> None:
        self.client = client
        self.runs = runs
        self.accepted: set[int] = set()
        self.statuses: list[int] = []
        self._seq = 0

    def event(self, *, sleep: float = 0.0) -> tuple[bytes, dict[str, str]]:
        self._seq += 1
        body = http_event(f"inv-{self._seq}", script(self.runs, sleep=sleep, seq=self._seq))
        return ghl_request(body)

    async def post(self, request: tuple[bytes, dict[str, str]]) -> httpx.Response:
        body, headers = request
        response = await self.client.post("/webhooks/ghl", content=body, headers=headers)
        self.statuses.append(response.status_code)
        if response.status_code in (200, 202):
            # 200 "duplicate": a resend of one stored before its answer was lost; stored all
            # the same, so it must end done too.
            expected = "queued" if response.status_code == 202 else "duplicate"
            assert response.json()["status"] == expected, response.text
            self.accepted.add(response.json()["id"])
        elif response.status_code == 503:
            assert response.headers["content-type"].startswith("application/problem+json")
            assert int(response.headers["retry-after"]) > 0
        else:
            raise AssertionError(f"{response.status_code} {response.text}")
        return response

    async def deliver(self, request: tuple[bytes, dict[str, str]]) -> None:
        """As GHL would: resend after a 503 until the service takes it."""

        async def taken() -> bool:
            return (await self.post(request)).status_code in (200, 202)

        await eventually(taken, timeout=120, interval=0.5, what="the webhook to be accepted")


def accepted_done(sessionmaker: Sessionmaker, sender: Sender):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        events = {e.id: e.status for e in await load_events(sessionmaker)}
        return all(events.get(i) == "done" for i in sender.accepted)

    return check


def assert_nothing_lost(events: list, sender: Sender, runs: Path) -> None:  # type: ignore[type-arg]
    assert sender.accepted, "no webhook was accepted"
    assert {e.id for e in events} == sender.accepted  # 503s stored nothing
    assert {e.status for e in events} == {"done"}
    assert {r.inbox_id for r in read_runs(runs) if r.phase == "end"} == sender.accepted


async def test_webhooks_and_worker_survive_terminated_postgres_connections(
    database_url: str, sessionmaker: Sessionmaker, spawner: Spawner, tmp_path: Path
) -> None:
    runs = tmp_path / "runs.log"
    server, base_url = await spawner.server(database_url)
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT) as client:
        sender = Sender(client, runs)
        for _ in range(5):
            await sender.deliver(sender.event())
        await eventually(accepted_done(sessionmaker, sender), what="the first events to be done")

        # Work in flight when the connections are cut.
        for _ in range(4):
            await sender.deliver(sender.event(sleep=1.5))
        await eventually(lambda: _has_start(runs, seq_from=6, count=1), what="slow events to start")
        assert await terminate_backends(database_url) > 0

        for n in range(20):
            if n == 10:
                await terminate_backends(database_url)
            await sender.deliver(sender.event())

        # Connections cut while requests and attempts are in the middle of their transactions.
        async def keep_terminating() -> None:
            for _ in range(8):
                await terminate_backends(database_url)
                await asyncio.sleep(0.15)

        await asyncio.gather(
            keep_terminating(),
            *(sender.deliver(sender.event(sleep=0.2)) for _ in range(30)),
        )

        await eventually(
            accepted_done(sessionmaker, sender),
            timeout=120,
            what=f"every accepted event to be done\n{spawner.outputs()}",
        )
    assert set(sender.statuses) <= {200, 202, 503}
    assert server.alive()
    assert_nothing_lost(await load_events(sessionmaker), sender, runs)


@pytest.mark.parametrize("worker", ["inprocess", "separate"])
async def test_service_answers_503_while_postgres_is_down_and_recovers_after(
    worker: str,
    database_url: str,
    sessionmaker: Sessionmaker,
    spawner: Spawner,
    proxy: TcpProxy,
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs.log"
    proxied = via_proxy(database_url, proxy)
    if worker == "separate":
        spawner.worker(proxied)
    server, base_url = await spawner.server(
        proxied, WORKER="inprocess" if worker == "inprocess" else "off"
    )
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT) as client:
        sender = Sender(client, runs)
        for _ in range(3):
            await sender.deliver(sender.event())
        await eventually(accepted_done(sessionmaker, sender), what="the first events to be done")
        for _ in range(3):
            await sender.deliver(sender.event(sleep=2.0))
        await eventually(lambda: _has_start(runs, seq_from=4, count=3), what="slow events to start")

        proxy.stop()
        refused = [sender.event() for _ in range(5)]
        for request in refused:
            # Not a 500, not a hang: REQUEST_TIMEOUT bounds the wait.
            assert (await sender.post(request)).status_code == 503
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/ready")).status_code == 503
        # Stay down past the in-flight handlers' end and a lease length: their outcome cannot
        # be recorded, so the events must come back through the lease sweeper.
        await eventually(lambda: _has_end(runs, seq_from=4, count=3), what="slow events to end")
        await asyncio.sleep(4)

        proxy.start()
        for request in refused:  # the senders' retries
            await sender.deliver(request)
        for _ in range(5):
            await sender.deliver(sender.event())
        await eventually(
            accepted_done(sessionmaker, sender),
            timeout=120,
            what=f"every accepted event to be done\n{spawner.outputs()}",
        )
    assert 500 not in sender.statuses
    assert server.alive()
    events = await load_events(sessionmaker)
    assert_nothing_lost(events, sender, runs)
    assert len(events) == 3 + 3 + 5 + 5


@pytest.mark.parametrize("worker", ["inprocess", "separate"])
async def test_service_started_while_postgres_is_down_takes_webhooks_once_it_is_up(
    worker: str,
    database_url: str,
    sessionmaker: Sessionmaker,
    spawner: Spawner,
    proxy: TcpProxy,
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs.log"
    proxied = via_proxy(database_url, proxy)
    proxy.stop()
    processes = [spawner.worker(proxied)] if worker == "separate" else []
    server, base_url = await spawner.server(
        proxied, WORKER="inprocess" if worker == "inprocess" else "off"
    )
    processes.append(server)
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT) as client:
        sender = Sender(client, runs)
        refused = [sender.event() for _ in range(3)]
        for request in refused:
            assert (await sender.post(request)).status_code == 503
        assert (await client.get("/ready")).status_code == 503

        proxy.start()
        for request in refused:
            await sender.deliver(request)
        for _ in range(3):
            await sender.deliver(sender.event())
        await eventually(
            accepted_done(sessionmaker, sender),
            timeout=120,
            what=f"every accepted event to be done\n{spawner.outputs()}",
        )
        await eventually(
            lambda: _answers(client, "/ready", 200), timeout=60, what="/ready to say ready"
        )
    assert all(proc.alive() for proc in processes), spawner.outputs()
    assert_nothing_lost(await load_events(sessionmaker), sender, runs)


async def test_worker_stopped_while_postgres_is_down_exits_cleanly_and_loses_nothing(
    database_url: str,
    sessionmaker: Sessionmaker,
    spawner: Spawner,
    proxy: TcpProxy,
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs.log"
    proxied = via_proxy(database_url, proxy)
    worker = spawner.worker(proxied, grace=1)
    await worker.wait_for_output("worker started")
    [inbox_id] = await queue_events(
        sessionmaker, direct_event("order-1", script(runs, hang_on_attempts=(1,)))
    )
    await eventually(lambda: _has_start(runs, seq_from=0, count=1), what="attempt 1 to start")

    proxy.stop()
    worker.send(signal.SIGTERM)
    assert await worker.wait_exit(timeout=90) == 0, worker.tail()
    proxy.start()
    # It could not hand the event back; its lease runs out instead.
    event = await load_event(sessionmaker, inbox_id)
    assert (event.status, event.attempts) == ("running", 1)

    spawner.worker(proxied)
    await eventually(
        lambda: _status_is(sessionmaker, inbox_id, "done"),
        timeout=90,
        what=f"the event to be done\n{spawner.outputs()}",
    )
    event = await load_event(sessionmaker, inbox_id)
    assert [(a.attempt, a.outcome) for a in event.attempt_log] == [(1, "lost"), (2, "done")]
    assert [(r.phase, r.attempt) for r in read_runs(runs)] == [
        ("start", 1),
        ("cancelled", 1),
        ("start", 2),
        ("end", 2),
    ]


async def _answers(client: httpx.AsyncClient, path: str, status: int) -> bool:
    return (await client.get(path)).status_code == status


async def _status_is(sessionmaker: Sessionmaker, inbox_id: int, status: str) -> bool:
    return (await load_event(sessionmaker, inbox_id)).status == status


async def _has_start(runs: Path, *, seq_from: int, count: int) -> bool:
    starts = {r.seq for r in read_runs(runs) if r.phase == "start" and (r.seq or 0) >= seq_from}
    return len(starts) >= count


async def _has_end(runs: Path, *, seq_from: int, count: int) -> bool:
    ends = {r.seq for r in read_runs(runs) if r.phase == "end" and (r.seq or 0) >= seq_from}
    return len(ends) >= count
