"""The worker in-process: outcomes, retries, replay, shutdown, heartbeats and database hiccups."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy.exc import OperationalError

from tests.conftest import make_settings
from tests.support.signing import wizehire_request
from tests.support.waiting import eventually, wait_for_status
from tests.support.worker_harness import (
    add_event,
    finish_attempt,
    heartbeat_row,
    load,
    new_worker,
    running_worker,
)
from wizesync import samples
from wizesync.db import heartbeat_repo, inbox_repo
from wizesync.db.base import utcnow
from wizesync.db.models import EventStatus
from wizesync.inbox.context import EventContext, PermanentFailure, RetryLater
from wizesync.inbox.registry import HandlerRegistry
from wizesync.inbox.replay import replay
from wizesync.inbox.worker import backoff_delay
from wizesync.outbound import record_outbound_call

SOURCE, TYPE = "wizehire", "order.created"
HANDLER_WAIT = 30.0  # how long a handler waits for the test before giving up


def registry_with(handler) -> HandlerRegistry:  # type: ignore[no-untyped-def]
    registry = HandlerRegistry()
    registry.add(SOURCE, TYPE, handler)
    return registry


def failing_first(times: int, exc: Exception):  # type: ignore[no-untyped-def]
    """A handler that raises `exc` on its first `times` attempts, then succeeds."""
    calls: list[int] = []

    async def handle(ctx: EventContext) -> None:
        calls.append(ctx.event.attempt)
        if len(calls) <= times:
            raise exc

    handle.calls = calls  # type: ignore[attr-defined]
    return handle


# --- outcomes ------------------------------------------------------------------------------------


async def test_successful_handler_marks_event_done(database_url, sessionmaker) -> None:
    seen: list[tuple[int, int, object]] = []

    async def handle(ctx: EventContext) -> None:
        seen.append((ctx.event.id, ctx.event.attempt, ctx.event.payload))
        record_outbound_call("PATCH", "https://wizehire.test/v1/orders/o1/sync", 200, 12.3)

    event_id = await add_event(sessionmaker, key="wizehire:order:o1", payload={"a": 1})
    async with running_worker(make_settings(database_url), sessionmaker, registry_with(handle)):
        event = await wait_for_status(sessionmaker, event_id, EventStatus.DONE)

    assert seen == [(event_id, 1, {"a": 1})]
    assert event.attempts == 1
    assert event.handled_at is not None and event.handled_at >= event.received_at
    assert event.lease_owner is None and event.last_error is None
    [attempt] = event.attempt_log
    assert attempt.outcome == EventStatus.DONE
    assert attempt.error is None
    assert attempt.outbound_calls == [
        {
            "method": "PATCH",
            "url": "https://wizehire.test/v1/orders/o1/sync",
            "status": 200,
            "ms": 12.3,
        }
    ]


async def test_webhook_event_is_handled_by_the_in_process_worker(
    database_url, sessionmaker, client_factory
) -> None:
    handled: list[str | None] = []

    async def handle(ctx: EventContext) -> None:
        handled.append(ctx.event.ordering_key)

    client = await client_factory(registry=registry_with(handle))
    body, headers = wizehire_request(samples.wizehire_event("order.created", "wh_ord_77"))
    answer = await client.post("/webhooks/wizehire", content=body, headers=headers)
    assert answer.status_code == 202, answer.text
    event_id = answer.json()["id"]

    event = await wait_for_status(sessionmaker, event_id, EventStatus.DONE)
    assert handled == ["wizehire:order:wh_ord_77"]
    assert event.attempts == 1


async def test_handler_failing_once_is_retried_after_backoff_then_done(
    database_url, sessionmaker
) -> None:
    base, cap = 0.3, 1.0  # first retry waits between 0.15 and 0.3 s
    settings = make_settings(
        database_url, worker_backoff_base_seconds=base, worker_backoff_max_seconds=cap
    )
    handle = failing_first(1, RuntimeError("GHL said 502"))
    event_id = await add_event(sessionmaker)

    async with running_worker(settings, sessionmaker, registry_with(handle)):
        event = await wait_for_status(sessionmaker, event_id, EventStatus.DONE)

    assert handle.calls == [1, 2]
    assert event.attempts == 2
    first, second = event.attempt_log
    assert (first.outcome, second.outcome) == (EventStatus.RETRY, EventStatus.DONE)
    assert first.error == "RuntimeError: GHL said 502"
    # The retry was scheduled half to all of the base delay after the failure...
    assert first.started_at + timedelta(seconds=base / 2) <= event.next_attempt_at
    assert event.next_attempt_at <= first.finished_at + timedelta(seconds=base)
    # ...and the second attempt did not start before it was due.
    assert second.started_at >= event.next_attempt_at


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    for attempt, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0), (10, 60.0)]:
        delays = [backoff_delay(attempt, base=2.0, cap=60.0) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jittered, so retries of many events do not align


async def test_retry_later_schedules_the_next_attempt_after_the_asked_delay(
    database_url, sessionmaker
) -> None:
    delay = 120.0  # far beyond the test: the event stays waiting

    async def handle(ctx: EventContext) -> None:
        raise RetryLater("GHL answered 429", delay=delay)

    event_id = await add_event(sessionmaker)
    async with running_worker(make_settings(database_url), sessionmaker, registry_with(handle)):
        event = await wait_for_status(sessionmaker, event_id, EventStatus.RETRY)

    [attempt] = event.attempt_log
    assert attempt.outcome == EventStatus.RETRY
    assert event.last_error == "retry later: GHL answered 429"
    assert event.handled_at is None
    assert attempt.started_at + timedelta(seconds=delay) <= event.next_attempt_at
    assert event.next_attempt_at <= attempt.finished_at + timedelta(seconds=delay)


async def test_retry_later_without_a_delay_uses_the_backoff(database_url, sessionmaker) -> None:
    handle = failing_first(1, RetryLater("not yet"))
    event_id = await add_event(sessionmaker)
    async with running_worker(make_settings(database_url), sessionmaker, registry_with(handle)):
        event = await wait_for_status(sessionmaker, event_id, EventStatus.DONE)
    assert [a.outcome for a in event.attempt_log] == [EventStatus.RETRY, EventStatus.DONE]
    assert event.attempt_log[0].error == "retry later: not yet"


async def test_permanent_failure_goes_dead_at_once(database_url, sessionmaker) -> None:
    async def handle(ctx: EventContext) -> None:
        raise PermanentFailure("SKU JOB-BOOST-99 is not mapped")

    event_id = await add_event(sessionmaker)
    async with running_worker(make_settings(database_url), sessionmaker, registry_with(handle)):
        event = await wait_for_status(sessionmaker, event_id, EventStatus.DEAD)

    assert event.attempts == 1
    assert event.last_error == "SKU JOB-BOOST-99 is not mapped"
    assert event.handled_at is not None
    [attempt] = event.attempt_log
    assert attempt.outcome == EventStatus.DEAD


async def test_event_failing_every_time_dies_out_of_attempts(database_url, sessionmaker) -> None:
    settings = make_settings(database_url, worker_max_attempts=3)
    handle = failing_first(1000, ConnectionError("wizehire unreachable"))
    event_id = await add_event(sessionmaker)

    async with running_worker(settings, sessionmaker, registry_with(handle)):
        event = await wait_for_status(sessionmaker, event_id, EventStatus.DEAD)

    assert handle.calls == [1, 2, 3]
    assert event.attempts == 3
    assert event.last_error == "out of attempts (3): ConnectionError: wizehire unreachable"
    assert [a.outcome for a in event.attempt_log] == [
        EventStatus.RETRY,
        EventStatus.RETRY,
        EventStatus.DEAD,
    ]


async def test_handler_crash_does_not_stop_other_events(database_url, sessionmaker) -> None:
    async def handle(ctx: EventContext) -> None:
        if ctx.event.payload.get("bad"):
            raise PermanentFailure("bad data")

    bad = await add_event(sessionmaker, payload={"bad": True})
    good = await add_event(sessionmaker, payload={"bad": False})
    async with running_worker(make_settings(database_url), sessionmaker, registry_with(handle)):
        await wait_for_status(sessionmaker, bad, EventStatus.DEAD)
        await wait_for_status(sessionmaker, good, EventStatus.DONE)


# --- replay --------------------------------------------------------------------------------------


@pytest.mark.parametrize("first_outcome", [EventStatus.DEAD, EventStatus.DONE])
async def test_replay_runs_a_finished_event_again(
    database_url, sessionmaker, first_outcome: EventStatus
) -> None:
    attempts: list[int] = []

    async def handle(ctx: EventContext) -> None:
        attempts.append(ctx.event.attempt)
        if len(attempts) == 1 and first_outcome == EventStatus.DEAD:
            raise PermanentFailure("SKU not mapped yet")

    event_id = await add_event(sessionmaker, key="wizehire:order:o9")
    async with running_worker(make_settings(database_url), sessionmaker, registry_with(handle)):
        await wait_for_status(sessionmaker, event_id, first_outcome)
        assert await replay(sessionmaker, event_id) == EventStatus.QUEUED
        event = await eventually(
            lambda: _done_after(sessionmaker, event_id, attempts=2),
            what="the replayed event to run again",
        )

    assert attempts == [1, 2]
    assert event.handled_at is not None
    assert [a.outcome for a in event.attempt_log] == [first_outcome, EventStatus.DONE]


async def _done_after(sessionmaker, event_id: int, attempts: int):  # type: ignore[no-untyped-def]
    event = await load(sessionmaker, event_id)
    return event if event.status == EventStatus.DONE and event.attempts == attempts else None


async def test_replay_of_an_event_still_in_the_queue_is_refused(sessionmaker) -> None:
    event_id = await add_event(sessionmaker)
    with pytest.raises(ValueError, match="only finished events replay"):
        await replay(sessionmaker, event_id)
    assert (await load(sessionmaker, event_id)).status == EventStatus.QUEUED


async def test_replay_of_an_unknown_event_is_none(sessionmaker) -> None:
    assert await replay(sessionmaker, 424242) is None


async def test_replay_of_a_quarantined_event_rereads_its_body(sessionmaker) -> None:
    """After the sender's data (or our schema) is fixed, the stored body classifies anew."""
    good = samples.wizehire_event("refund.requested", "wh_ord_5")
    fixed = await add_event(
        sessionmaker, type_="unknown", status=EventStatus.QUARANTINED, payload=good
    )
    broken = await add_event(
        sessionmaker,
        type_="unknown",
        status=EventStatus.QUARANTINED,
        payload={"type": "order.created"},
        raw_body=b'{"type": "order.c',
    )

    assert await replay(sessionmaker, fixed) == EventStatus.QUEUED
    row = await load(sessionmaker, fixed)
    assert (row.status, row.type, row.ordering_key) == (
        EventStatus.QUEUED,
        "refund.requested",
        "wizehire:order:wh_ord_5",
    )
    with pytest.raises(ValueError, match="still cannot be handled: body: body is not JSON"):
        await replay(sessionmaker, broken)
    assert (await load(sessionmaker, broken)).status == EventStatus.QUARANTINED


async def test_admin_replay_route_requeues_and_the_worker_runs_it_again(
    database_url, sessionmaker, client_factory
) -> None:
    gate = asyncio.Event()
    attempts: list[int] = []

    async def handle(ctx: EventContext) -> None:
        attempts.append(ctx.event.attempt)
        if ctx.event.attempt == 1:
            raise PermanentFailure("mapping missing")
        await asyncio.wait_for(gate.wait(), HANDLER_WAIT)  # hold attempt 2 in `running`

    client = await client_factory(registry=registry_with(handle))
    event_id = await add_event(sessionmaker)
    await wait_for_status(sessionmaker, event_id, EventStatus.DEAD)

    answer = await client.post(f"/admin/events/{event_id}/replay")
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"id": event_id, "status": "queued"}
    await wait_for_status(sessionmaker, event_id, EventStatus.RUNNING)

    conflict = await client.post(f"/admin/events/{event_id}/replay")
    assert conflict.status_code == 409
    assert conflict.headers["content-type"].startswith("application/problem+json")
    assert "is running" in conflict.json()["detail"]

    gate.set()
    event = await wait_for_status(sessionmaker, event_id, EventStatus.DONE)
    assert attempts == [1, 2]
    assert event.attempts == 2
    missing = await client.post("/admin/events/999999/replay")
    assert missing.status_code == 404


# --- shutdown ------------------------------------------------------------------------------------


async def test_stop_releases_a_handler_past_its_grace_and_another_worker_finishes_it(
    database_url, sessionmaker
) -> None:
    settings = make_settings(database_url)
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def hang(ctx: EventContext) -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # never set: only cancellation ends this
        except asyncio.CancelledError:
            cancelled.set()
            raise

    finished: list[int] = []

    async def finish(ctx: EventContext) -> None:
        finished.append(ctx.event.attempt)

    event_id = await add_event(sessionmaker)
    first = new_worker(settings, sessionmaker, registry_with(hang), worker_id="first")
    first.start()
    await asyncio.wait_for(started.wait(), HANDLER_WAIT)
    await first.stop(grace_seconds=0.2)

    assert cancelled.is_set()
    assert first.in_flight == 0
    event = await load(sessionmaker, event_id)
    assert event.status == EventStatus.RETRY
    assert event.lease_owner is None
    assert event.last_error == "released by a worker shutting down"
    [attempt] = event.attempt_log
    assert attempt.outcome == "released"

    async with running_worker(settings, sessionmaker, registry_with(finish), worker_id="second"):
        event = await wait_for_status(sessionmaker, event_id, EventStatus.DONE)
    assert finished == [2]
    assert [(a.worker_id, a.outcome) for a in event.attempt_log] == [
        ("first", "released"),
        ("second", EventStatus.DONE),
    ]


async def test_stop_lets_a_handler_finish_within_its_grace(database_url, sessionmaker) -> None:
    started, proceed = asyncio.Event(), asyncio.Event()

    async def handle(ctx: EventContext) -> None:
        started.set()
        await asyncio.wait_for(proceed.wait(), HANDLER_WAIT)

    event_id = await add_event(sessionmaker, key="k")
    worker = new_worker(make_settings(database_url), sessionmaker, registry_with(handle))
    worker.start()
    await asyncio.wait_for(started.wait(), HANDLER_WAIT)

    stopping = asyncio.create_task(worker.stop(grace_seconds=HANDLER_WAIT))
    await eventually(_true_when(lambda: worker._stopping.is_set()), what="stop to begin")
    later = await add_event(sessionmaker)  # arrives during shutdown: must not be claimed
    assert not stopping.done()
    proceed.set()
    await stopping

    event = await load(sessionmaker, event_id)
    assert event.status == EventStatus.DONE
    assert [a.outcome for a in event.attempt_log] == [EventStatus.DONE]
    assert (await load(sessionmaker, later)).status == EventStatus.QUEUED


def _true_when(predicate):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return bool(predicate())

    return check


# --- heartbeats, crashed workers, database hiccups ---------------------------------------------


async def test_heartbeat_row_appears_and_is_marked_stopped(database_url, sessionmaker) -> None:
    worker = new_worker(
        make_settings(database_url), sessionmaker, HandlerRegistry(), worker_id="beating-worker"
    )
    worker.start()
    try:
        row = await eventually(
            lambda: heartbeat_row(sessionmaker, "beating-worker"), what="the worker's heartbeat row"
        )
        assert row.stopped_at is None
        assert row.last_seen_at >= row.started_at
        async with sessionmaker() as session:
            assert await heartbeat_repo.latest_beat(session) is not None
    finally:
        await worker.stop(grace_seconds=1)

    row = await heartbeat_row(sessionmaker, "beating-worker")
    assert row is not None and row.stopped_at is not None
    assert row.in_flight == 0
    async with sessionmaker() as session:  # a stopped worker no longer counts as alive
        assert await heartbeat_repo.latest_beat(session) is None


async def test_event_of_a_crashed_worker_is_run_again_after_its_lease_expires(
    database_url, sessionmaker
) -> None:
    event_id = await add_event(sessionmaker)
    async with sessionmaker.begin() as session:  # a worker that claimed it, then vanished
        [claimed] = await inbox_repo.claim_due(
            session, worker_id="crashed", lease_seconds=-1, limit=1
        )
    assert claimed.id == event_id

    handle = failing_first(0, RuntimeError())
    async with running_worker(
        make_settings(database_url), sessionmaker, registry_with(handle), worker_id="survivor"
    ):
        event = await wait_for_status(sessionmaker, event_id, EventStatus.DONE)

    assert handle.calls == [2]
    assert [(a.worker_id, a.outcome) for a in event.attempt_log] == [
        ("crashed", "lost"),
        ("survivor", EventStatus.DONE),
    ]


async def test_late_finish_of_a_lapsed_attempt_does_not_close_the_retry_in_the_same_worker(
    database_url, sessionmaker, monkeypatch
) -> None:
    """Heartbeats fail, the lease lapses, this very worker sweeps and claims attempt 2; when
    attempt 1 then returns, attempt 2 must stay running, owned and tracked."""

    async def heartbeat_cannot_extend(session, **kwargs):  # type: ignore[no-untyped-def]
        return 0

    real_claim = inbox_repo.claim_due
    claims: list[int] = []

    async def short_lease_first(session, *, lease_seconds, **kwargs):  # type: ignore[no-untyped-def]
        # Attempt 1 gets a lease that lapses at once; attempt 2 one that outlives the test.
        claimed = await real_claim(session, lease_seconds=600 if claims else 0.5, **kwargs)
        claims.extend(event.attempt for event in claimed)
        return claimed

    monkeypatch.setattr(inbox_repo, "extend_leases", heartbeat_cannot_extend)
    monkeypatch.setattr(inbox_repo, "claim_due", short_lease_first)
    started = {1: asyncio.Event(), 2: asyncio.Event()}
    proceed = {1: asyncio.Event(), 2: asyncio.Event()}

    async def handle(ctx: EventContext) -> None:
        started[ctx.event.attempt].set()
        await asyncio.wait_for(proceed[ctx.event.attempt].wait(), HANDLER_WAIT)

    event_id = await add_event(sessionmaker)
    worker = new_worker(
        make_settings(database_url, worker_lease_seconds=3),
        sessionmaker,
        registry_with(handle),
        worker_id="lapsed",
    )
    worker.start()
    try:
        await asyncio.wait_for(started[2].wait(), HANDLER_WAIT)
        proceed[1].set()

        async def first_attempt_returned():  # type: ignore[no-untyped-def]
            event = await load(sessionmaker, event_id)
            first = event.attempt_log[0]
            return event if first.error == "lease lost before the attempt finished" else None

        event = await eventually(first_attempt_returned, what="attempt 1 to finish late")
        assert (event.status, event.lease_owner, event.attempts) == (
            EventStatus.RUNNING,
            "lapsed",
            2,
        )
        assert event.attempt_log[1].outcome is None
        assert worker.in_flight == 1  # attempt 2 is still tracked (heartbeat, shutdown)
        proceed[2].set()
        event = await wait_for_status(sessionmaker, event_id, EventStatus.DONE)
    finally:
        proceed[1].set()
        proceed[2].set()
        await worker.stop(grace_seconds=5)
    assert [a.outcome for a in event.attempt_log] == ["lost", EventStatus.DONE]
    assert claims == [1, 2]


async def test_worker_survives_a_failed_claim_and_carries_on(
    database_url, sessionmaker, monkeypatch
) -> None:
    real_claim = inbox_repo.claim_due
    failures: list[str] = []

    async def flaky_claim(session, **kwargs):  # type: ignore[no-untyped-def]
        if not failures:
            failures.append("claim")
            raise OperationalError("claim", {}, ConnectionRefusedError("database went away"))
        return await real_claim(session, **kwargs)

    monkeypatch.setattr(inbox_repo, "claim_due", flaky_claim)
    event_id = await add_event(sessionmaker)
    async with running_worker(
        make_settings(database_url), sessionmaker, registry_with(failing_first(0, RuntimeError()))
    ):
        event = await wait_for_status(sessionmaker, event_id, EventStatus.DONE)

    assert failures == ["claim"]
    assert event.attempts == 1  # the failed claim rolled back: it cost no attempt


async def test_worker_started_while_the_database_is_away_still_works(
    database_url, sessionmaker, monkeypatch
) -> None:
    """The first heartbeat failing (database briefly down at start) must not kill the worker."""
    real_beat = heartbeat_repo.beat
    failures: list[str] = []

    async def flaky_beat(session, **kwargs):  # type: ignore[no-untyped-def]
        if not failures:
            failures.append("beat")
            raise OperationalError("beat", {}, ConnectionRefusedError("database went away"))
        return await real_beat(session, **kwargs)

    monkeypatch.setattr(heartbeat_repo, "beat", flaky_beat)
    event_id = await add_event(sessionmaker)
    async with running_worker(
        make_settings(database_url), sessionmaker, registry_with(failing_first(0, RuntimeError()))
    ):
        await wait_for_status(sessionmaker, event_id, EventStatus.DONE)
    assert failures == ["beat"]


async def test_idle_worker_waits_for_a_wake_instead_of_spinning_on_blocked_events(
    database_url, sessionmaker
) -> None:
    """A due event stuck behind a running one of its key must not make the claim loop spin."""
    await add_event(sessionmaker, key="A")
    await add_event(sessionmaker, key="A")
    async with sessionmaker.begin() as session:
        await inbox_repo.claim_due(session, worker_id="elsewhere", lease_seconds=600, limit=1)
    worker = new_worker(
        make_settings(database_url, worker_poll_seconds=7), sessionmaker, HandlerRegistry()
    )

    assert await worker._idle_timeout() == 7


async def test_idle_worker_sleeps_until_the_next_retry_falls_due(
    database_url, sessionmaker
) -> None:
    await add_event(sessionmaker)
    async with sessionmaker.begin() as session:
        [claimed] = await inbox_repo.claim_due(session, worker_id="w", lease_seconds=60, limit=1)
        await finish_attempt(
            session,
            event=claimed,
            worker_id="w",
            outcome=EventStatus.RETRY,
            next_attempt_at=utcnow() + timedelta(seconds=3),
        )
    worker = new_worker(
        make_settings(database_url, worker_poll_seconds=60), sessionmaker, HandlerRegistry()
    )

    assert 0 < await worker._idle_timeout() <= 3.01
