"""The queue's SQL, called directly: claiming, finishing, releasing, sweeping and re-queueing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.worker_harness import add_event, finish_attempt, load
from wizesync.db import inbox_repo
from wizesync.db.base import utcnow
from wizesync.db.inbox_repo import ClaimedEvent
from wizesync.db.models import EventStatus

LEASE = 60.0
EXPIRED = -1.0  # a lease that ran out the moment it was granted: a crashed worker


async def claim(
    sessionmaker, worker_id: str = "w1", *, limit: int = 10, lease: float = LEASE
) -> list[ClaimedEvent]:
    async with sessionmaker.begin() as session:
        return await inbox_repo.claim_due(
            session, worker_id=worker_id, lease_seconds=lease, limit=limit
        )


async def finish(
    sessionmaker,
    event: ClaimedEvent,
    worker_id: str = "w1",
    outcome: EventStatus = EventStatus.DONE,
    **kwargs,
) -> bool:
    async with sessionmaker.begin() as session:
        return await finish_attempt(
            session, event=event, worker_id=worker_id, outcome=outcome, **kwargs
        )


async def sweep(sessionmaker, max_attempts: int = 5) -> list[int]:
    async with sessionmaker.begin() as session:
        return await inbox_repo.sweep_expired_leases(session, max_attempts=max_attempts)


def ids(claimed: list[ClaimedEvent]) -> list[int]:
    return [event.id for event in claimed]


# --- claim_due -----------------------------------------------------------------------------------


async def test_claim_takes_one_event_per_ordering_key_oldest_first(sessionmaker) -> None:
    a1 = await add_event(sessionmaker, key="A")
    a2 = await add_event(sessionmaker, key="A")
    b1 = await add_event(sessionmaker, key="B")
    free1 = await add_event(sessionmaker)
    b2 = await add_event(sessionmaker, key="B")
    free2 = await add_event(sessionmaker)

    claimed = await claim(sessionmaker)

    assert ids(claimed) == [a1, b1, free1, free2]
    assert all(event.attempt == 1 for event in claimed)
    # The rest of each key's line waits while its head runs.
    assert await claim(sessionmaker, "w2") == []
    for event in claimed:
        row = await load(sessionmaker, event.id)
        assert row.status == EventStatus.RUNNING
        assert row.lease_owner == "w1"
        assert row.attempts == 1
        assert row.lease_expires_at is not None and row.lease_expires_at > utcnow()
        [attempt] = row.attempt_log
        assert (attempt.attempt, attempt.worker_id, attempt.outcome) == (1, "w1", None)

    by_id = {event.id: event for event in claimed}
    assert await finish(sessionmaker, by_id[a1])
    assert ids(await claim(sessionmaker, "w2")) == [a2]
    assert await finish(sessionmaker, by_id[b1])
    assert ids(await claim(sessionmaker, "w2")) == [b2]


async def test_claim_respects_the_limit_in_arrival_order(sessionmaker) -> None:
    first = [await add_event(sessionmaker, key=f"k{i}") for i in range(5)]
    assert ids(await claim(sessionmaker, limit=2)) == first[:2]
    assert ids(await claim(sessionmaker, limit=2)) == first[2:4]
    assert ids(await claim(sessionmaker, limit=2)) == first[4:]


async def test_claim_finds_free_keys_behind_a_long_blocked_line(sessionmaker) -> None:
    """Many waiting events of one key must not hide a claimable event further back."""
    await add_event(sessionmaker, key="busy")
    [head] = await claim(sessionmaker, limit=1)
    for _ in range(12):
        await add_event(sessionmaker, key="busy")
    other = await add_event(sessionmaker, key="other")

    assert ids(await claim(sessionmaker, limit=1)) == [other]
    assert head.ordering_key == "busy"


async def test_event_behind_a_waiting_retry_of_its_key_is_not_claimable(sessionmaker) -> None:
    first = await add_event(sessionmaker, key="A")
    second = await add_event(sessionmaker, key="A")
    [claimed] = await claim(sessionmaker)
    later = utcnow() + timedelta(hours=1)
    assert await finish(
        sessionmaker, claimed, outcome=EventStatus.RETRY, error="boom", next_attempt_at=later
    )

    # The first waits for its retry time; the second must wait for the first.
    assert await claim(sessionmaker) == []
    row = await load(sessionmaker, first)
    assert row.status == EventStatus.RETRY
    assert row.next_attempt_at == later
    assert (await load(sessionmaker, second)).status == EventStatus.QUEUED
    async with sessionmaker() as session:
        assert await inbox_repo.next_due_at(session) <= later


async def test_event_due_in_the_future_is_not_claimable(sessionmaker) -> None:
    event_id = await add_event(sessionmaker)
    [claimed] = await claim(sessionmaker)
    soon = utcnow() + timedelta(minutes=5)
    await finish(sessionmaker, claimed, outcome=EventStatus.RETRY, next_attempt_at=soon)

    assert await claim(sessionmaker) == []
    async with sessionmaker() as session:
        assert await inbox_repo.next_due_at(session) == soon
    assert (await load(sessionmaker, event_id)).attempts == 1


async def test_next_due_after_a_time_ignores_events_already_due(sessionmaker) -> None:
    """The worker sleeps until the next retry; a due-but-blocked event must not shorten that."""
    await add_event(sessionmaker, key="A")
    await add_event(sessionmaker, key="B")
    [claimed, _] = await claim(sessionmaker)
    retry_at = utcnow() + timedelta(seconds=30)
    await finish(sessionmaker, claimed, outcome=EventStatus.RETRY, next_attempt_at=retry_at)
    await add_event(sessionmaker, key="B")  # due now, blocked behind the running B

    async with sessionmaker() as session:
        assert await inbox_repo.next_due_at(session) < utcnow()
        assert await inbox_repo.next_due_at(session, after=utcnow()) == retry_at
        assert await inbox_repo.next_due_at(session, after=retry_at) is None


async def test_event_waits_while_a_later_event_of_its_key_runs(sessionmaker) -> None:
    """A replayed (older) event must not run beside a newer event of its key already running."""
    older = await add_event(sessionmaker, key="A", status=EventStatus.DONE)
    newer = await add_event(sessionmaker, key="A")
    [running] = await claim(sessionmaker)
    assert running.id == newer
    async with sessionmaker.begin() as session:
        row = await inbox_repo.lock_for_replay(session, older)
        assert row is not None
        await inbox_repo.requeue(session, row)

    assert await claim(sessionmaker, "w2") == []
    assert await finish(sessionmaker, running)
    assert ids(await claim(sessionmaker, "w2")) == [older]


async def test_events_that_are_not_queued_are_never_claimed(sessionmaker) -> None:
    for status in (
        EventStatus.IGNORED,
        EventStatus.QUARANTINED,
        EventStatus.DONE,
        EventStatus.DEAD,
    ):
        await add_event(sessionmaker, key="A", status=status)
    assert await claim(sessionmaker) == []
    queued = await add_event(sessionmaker, key="A")
    assert ids(await claim(sessionmaker)) == [queued]


# --- finish_attempt and release --------------------------------------------------------------


async def test_finish_done_records_the_outcome_and_outbound_calls(sessionmaker) -> None:
    event_id = await add_event(sessionmaker)
    [claimed] = await claim(sessionmaker)
    calls = [{"method": "GET", "url": "https://example.test/x", "status": 200, "ms": 1.0}]

    assert await finish(sessionmaker, claimed, outbound_calls=calls)

    row = await load(sessionmaker, event_id)
    assert row.status == EventStatus.DONE
    assert row.lease_owner is None and row.lease_expires_at is None
    assert row.handled_at is not None
    [attempt] = row.attempt_log
    assert attempt.outcome == EventStatus.DONE
    assert attempt.finished_at is not None and attempt.finished_at >= attempt.started_at
    assert attempt.outbound_calls == calls


async def test_finish_by_a_worker_that_lost_the_lease_changes_nothing(sessionmaker) -> None:
    event_id = await add_event(sessionmaker)
    [stale] = await claim(sessionmaker, "w1", lease=EXPIRED)
    assert await sweep(sessionmaker) == [event_id]
    [current] = await claim(sessionmaker, "w2")
    assert current.attempt == 2

    assert not await finish(sessionmaker, stale, "w1", error=None)

    row = await load(sessionmaker, event_id)
    assert (row.status, row.lease_owner, row.attempts) == (EventStatus.RUNNING, "w2", 2)
    first, second = row.attempt_log
    assert first.outcome == "lost"
    assert second.outcome is None  # the new owner's attempt is untouched
    assert await finish(sessionmaker, current, "w2")
    assert (await load(sessionmaker, event_id)).status == EventStatus.DONE


async def test_finish_of_a_superseded_attempt_by_the_same_worker_is_refused(sessionmaker) -> None:
    """A worker whose lease lapsed (say, the database was away) may itself claim the event
    again; the old attempt finishing late must not close the new one."""
    event_id = await add_event(sessionmaker)
    [stale] = await claim(sessionmaker, "w1", lease=EXPIRED)
    await sweep(sessionmaker)
    [current] = await claim(sessionmaker, "w1")

    assert not await finish(sessionmaker, stale, "w1")

    row = await load(sessionmaker, event_id)
    assert (row.status, row.lease_owner, row.attempts) == (EventStatus.RUNNING, "w1", 2)
    assert row.attempt_log[1].outcome is None
    assert await finish(sessionmaker, current, "w1")


async def test_release_hands_events_back_due_at_once(sessionmaker) -> None:
    first = await add_event(sessionmaker, key="A")
    second = await add_event(sessionmaker, key="B")
    claimed = await claim(sessionmaker, "w1")

    async with sessionmaker.begin() as session:
        assert await inbox_repo.release(session, worker_id="other", event_ids=[first]) == 0
        assert await inbox_repo.release(session, worker_id="w1", event_ids=ids(claimed)) == 2

    for event_id in (first, second):
        row = await load(sessionmaker, event_id)
        assert row.status == EventStatus.RETRY
        assert row.lease_owner is None
        assert row.next_attempt_at <= utcnow()
        assert row.attempt_log[0].outcome == "released"
    # Released events are due now; the next claim continues with attempt 2.
    reclaimed = await claim(sessionmaker, "w2")
    assert ids(reclaimed) == [first, second]
    assert [event.attempt for event in reclaimed] == [2, 2]


async def test_extend_leases_only_touches_the_owners_running_events(sessionmaker) -> None:
    mine = await add_event(sessionmaker, key="A")
    theirs = await add_event(sessionmaker, key="B")
    await claim(sessionmaker, "w1", limit=1)
    await claim(sessionmaker, "w2", limit=1, lease=EXPIRED)

    async with sessionmaker.begin() as session:
        extended = await inbox_repo.extend_leases(
            session, worker_id="w1", event_ids=[mine, theirs], lease_seconds=600
        )
    assert extended == 1
    assert (await load(sessionmaker, mine)).lease_expires_at > utcnow() + timedelta(seconds=300)
    assert (await load(sessionmaker, theirs)).lease_expires_at < utcnow()


# --- sweep_expired_leases --------------------------------------------------------------------


async def test_sweep_requeues_events_whose_lease_expired(sessionmaker) -> None:
    crashed = await add_event(sessionmaker, key="A")
    healthy = await add_event(sessionmaker, key="B")
    await claim(sessionmaker, "dead-worker", limit=1, lease=EXPIRED)
    await claim(sessionmaker, "live-worker", limit=1)

    assert await sweep(sessionmaker) == [crashed]

    row = await load(sessionmaker, crashed)
    assert row.status == EventStatus.RETRY
    assert row.lease_owner is None and row.lease_expires_at is None
    assert row.handled_at is None
    assert "lease expired" in (row.last_error or "")
    [attempt] = row.attempt_log
    assert attempt.outcome == "lost"
    assert attempt.finished_at is not None
    assert (await load(sessionmaker, healthy)).status == EventStatus.RUNNING
    assert await sweep(sessionmaker) == []


async def test_sweep_kills_an_event_out_of_attempts(sessionmaker) -> None:
    event_id = await add_event(sessionmaker)
    for attempt in (1, 2):
        [claimed] = await claim(sessionmaker, f"crash-{attempt}", lease=EXPIRED)
        assert claimed.attempt == attempt
        assert await sweep(sessionmaker, max_attempts=2) == [event_id]

    row = await load(sessionmaker, event_id)
    assert row.status == EventStatus.DEAD
    assert row.handled_at is not None
    assert "out of attempts" in (row.last_error or "")
    assert [a.outcome for a in row.attempt_log] == ["lost", "lost"]
    assert await claim(sessionmaker) == []


# --- replay / requeue --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [EventStatus.QUEUED, EventStatus.RETRY, EventStatus.RUNNING])
async def test_events_still_in_the_queue_cannot_be_locked_for_replay(
    sessionmaker, status: EventStatus
) -> None:
    event_id = await add_event(sessionmaker)
    if status != EventStatus.QUEUED:
        [claimed] = await claim(sessionmaker)
        if status == EventStatus.RETRY:
            await finish(sessionmaker, claimed, outcome=EventStatus.RETRY)

    with pytest.raises(ValueError, match=f"is {status.value}"):
        async with sessionmaker.begin() as session:
            await inbox_repo.lock_for_replay(session, event_id)


async def test_lock_for_replay_of_an_unknown_event_is_none(sessionmaker) -> None:
    async with sessionmaker.begin() as session:
        assert await inbox_repo.lock_for_replay(session, 987654) is None


async def test_requeue_puts_a_finished_event_back_due_now(sessionmaker) -> None:
    event_id = await add_event(sessionmaker, key="A")
    [claimed] = await claim(sessionmaker)
    await finish(sessionmaker, claimed, outcome=EventStatus.DEAD, error="bad sku")

    async with sessionmaker.begin() as session:
        row = await inbox_repo.lock_for_replay(session, event_id)
        assert row is not None
        await inbox_repo.requeue(session, row)

    row = await load(sessionmaker, event_id)
    assert row.status == EventStatus.QUEUED
    assert row.handled_at is None and row.last_error is None
    assert row.next_attempt_at <= utcnow()
    assert row.attempts == 1  # history is kept: the next attempt is number 2
    [again] = await claim(sessionmaker)
    assert (again.id, again.attempt) == (event_id, 2)


async def test_requeue_can_bring_a_reread_type_key_and_payload(sessionmaker) -> None:
    event_id = await add_event(
        sessionmaker, type_="unknown", status=EventStatus.QUARANTINED, payload={"broken": True}
    )
    async with sessionmaker.begin() as session:
        row = await inbox_repo.lock_for_replay(session, event_id)
        assert row is not None
        await inbox_repo.requeue(
            session, row, type_="order.updated", ordering_key="wh_ord_9", payload={"fixed": True}
        )

    row = await load(sessionmaker, event_id)
    assert (row.status, row.type, row.ordering_key, row.payload) == (
        EventStatus.QUEUED,
        "order.updated",
        "wh_ord_9",
        {"fixed": True},
    )
