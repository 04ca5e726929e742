"""The queue's lines and lanes: each ordering key's head kept by the database, claims that read
heads only (whatever the statistics say), and lanes served in turn."""

from __future__ import annotations

import json
import random
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from tests.support.worker_harness import add_event, finish_attempt
from wizesync.db import inbox_repo
from wizesync.db.base import utcnow
from wizesync.db.inbox_repo import ClaimedEvent, NewEvent
from wizesync.db.models import EventStatus, InboxEvent
from wizesync.inbox.lanes import lane_for

LEASE = 60.0
PENDING = {EventStatus.QUEUED, EventStatus.RETRY, EventStatus.RUNNING}


async def claim(sessionmaker, limit: int = 10, worker_id: str = "w1") -> list[ClaimedEvent]:
    async with sessionmaker.begin() as session:
        return await inbox_repo.claim_due(
            session, worker_id=worker_id, lease_seconds=LEASE, limit=limit
        )


async def finish(
    sessionmaker, event: ClaimedEvent, outcome: EventStatus, worker_id: str = "w1", **kwargs
) -> bool:
    async with sessionmaker.begin() as session:
        return await finish_attempt(
            session, event=event, worker_id=worker_id, outcome=outcome, **kwargs
        )


async def assert_lines_hold(sessionmaker) -> None:
    """Every key with pending events has exactly one head: its running event, else its earliest
    pending one; events without a key are heads while pending; nothing else is a head."""
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(
                    InboxEvent.id,
                    InboxEvent.ordering_key,
                    InboxEvent.status,
                    InboxEvent.head,
                ).order_by(InboxEvent.id)
            )
        ).all()
    lines: dict[str, list] = {}
    for row in rows:
        if row.status not in PENDING:
            assert not row.head, f"{row.id} ({row.status}) is marked head"
        elif row.ordering_key is None:
            assert row.head, f"{row.id} has no key and is not a head"
        else:
            lines.setdefault(row.ordering_key, []).append(row)
    for key, line in lines.items():
        heads = [row.id for row in line if row.head]
        running = [row.id for row in line if row.status == EventStatus.RUNNING]
        expected = running[0] if running else line[0].id
        assert len(running) <= 1, f"key {key}: {running} run at once"
        assert heads == [expected], f"key {key}: heads {heads}, expected {expected}"


async def test_heads_follow_stores_claims_finishes_retries_and_replays(sessionmaker) -> None:
    """A random walk over everything that changes a line, checking the rule after each step."""
    rng = random.Random(12)
    keys = ["a", "b", "c", None]
    for _ in range(6):
        await add_event(sessionmaker, key=rng.choice(keys))
    await assert_lines_hold(sessionmaker)
    running: list[ClaimedEvent] = []
    finished: list[int] = []
    for _step in range(60):
        action = rng.choice(["store", "claim", "done", "retry", "dead", "replay", "store"])
        if action == "store":
            await add_event(sessionmaker, key=rng.choice(keys))
        elif action == "claim":
            running += await claim(sessionmaker, limit=rng.randint(1, 3))
        elif action in ("done", "retry", "dead") and running:
            event = running.pop(rng.randrange(len(running)))
            await finish(sessionmaker, event, EventStatus(action))
            if action != "retry":
                finished.append(event.id)
        elif action == "replay" and finished:
            event_id = finished.pop(rng.randrange(len(finished)))
            async with sessionmaker.begin() as session:
                row = await inbox_repo.lock_for_replay(session, event_id)
                assert row is not None
                await inbox_repo.requeue(session, row)
        await assert_lines_hold(sessionmaker)


async def test_a_retry_steps_back_for_an_earlier_event_stored_while_it_ran(sessionmaker) -> None:
    older = await add_event(sessionmaker, key="A", status=EventStatus.DONE)
    newer = await add_event(sessionmaker, key="A")
    [running] = await claim(sessionmaker)
    async with sessionmaker.begin() as session:
        row = await inbox_repo.lock_for_replay(session, older)
        assert row is not None
        await inbox_repo.requeue(session, row)
    await assert_lines_hold(sessionmaker)

    assert running.id == newer
    assert await finish(sessionmaker, running, EventStatus.RETRY)
    await assert_lines_hold(sessionmaker)
    assert [e.id for e in await claim(sessionmaker)] == [older]


async def test_only_due_heads_are_claimed_and_a_dead_head_hands_on(sessionmaker) -> None:
    first = await add_event(sessionmaker, key="K")
    second = await add_event(sessionmaker, key="K")
    [head] = await claim(sessionmaker)
    assert head.id == first
    later = utcnow() + timedelta(hours=1)
    assert await finish(sessionmaker, head, EventStatus.RETRY, next_attempt_at=later)
    assert await claim(sessionmaker) == []  # the head waits; the second is no head
    async with sessionmaker.begin() as session:
        await session.execute(
            update(InboxEvent).where(InboxEvent.id == first).values(next_attempt_at=utcnow())
        )
    [again] = await claim(sessionmaker)
    assert await finish(sessionmaker, again, EventStatus.DEAD, error="gave up")
    assert [e.id for e in await claim(sessionmaker)] == [second]


# --- lanes ----------------------------------------------------------------------------------------


def test_lane_is_the_location_or_account_from_the_payload() -> None:
    assert lane_for("ghl", {"locationId": "L1", "altId": "X"}) == "location:L1"
    assert lane_for("ghl", {"altId": "L2"}) == "location:L2"
    assert lane_for("ghl", {"companyId": "C"}) == "location:C"
    order = {"id": "o", "account_id": "acct"}
    assert lane_for("wizehire", {"data": {"order": order}}) == "account:acct"
    order["ghl_location_id"] = "L3"
    assert lane_for("wizehire", {"data": {"order": order}}) == "location:L3"
    assert lane_for("wizehire", {"data": {"refund": {"order_id": "o"}}}) == ""
    assert lane_for("internal", {"locationId": "L1"}) == ""
    assert lane_for("ghl", None) == lane_for("ghl", ["x"]) == ""


async def add_located(sessionmaker, location: str, key: str) -> int:
    payload = {"type": "OrderCreate", "locationId": location, "_id": key}
    async with sessionmaker.begin() as session:
        row_id = await inbox_repo.insert_event(
            session,
            NewEvent(
                source="ghl",
                event_id=f"evt_{uuid.uuid4().hex}",
                type="OrderCreate",
                ordering_key=key,
                status=EventStatus.QUEUED,
                raw_body=json.dumps(payload).encode(),
                payload=payload,
            ),
        )
    assert row_id is not None
    return row_id


async def test_a_burst_in_one_lane_does_not_hold_up_another_lanes_event(sessionmaker) -> None:
    """300 events of one location, then one of another: claims of 8 serve the lone event in the
    second claim, not after the burst."""
    for n in range(300):
        await add_located(sessionmaker, "BUSY", f"busy:{n}")
    lone = await add_located(sessionmaker, "QUIET", "quiet:1")

    first = await claim(sessionmaker, limit=8)
    second = await claim(sessionmaker, limit=8)
    assert lone not in [e.id for e in first]  # never served before, but "BUSY" sorts first
    assert lone in [e.id for e in second]
    # The burst goes on in arrival order after that.
    third = await claim(sessionmaker, limit=8)
    assert [e.ordering_key for e in third] == [f"busy:{n}" for n in range(15, 23)]


async def test_lanes_take_turns_one_batch_each(sessionmaker) -> None:
    for n in range(20):
        await add_located(sessionmaker, "A", f"a:{n}")
        await add_located(sessionmaker, "B", f"b:{n}")
    lanes = []
    for _ in range(4):
        batch = await claim(sessionmaker, limit=5)
        lanes.append({e.ordering_key.split(":")[0] for e in batch})
    assert lanes == [{"a"}, {"b"}, {"a"}, {"b"}]


# --- the plan, PostgreSQL -------------------------------------------------------------------


async def test_the_claim_plan_reads_a_batch_not_the_backlog_with_stale_statistics(
    sessionmaker, is_postgres
) -> None:
    """5,000 queued events (hot keys included) never analyzed: the claim reads heads by index,
    touching a few hundred buffers, where the old plan read every due event."""
    if not is_postgres:
        pytest.skip("the planner and its statistics are PostgreSQL's")
    async with sessionmaker.begin() as session:
        await session.execute(text("ALTER TABLE inbox_events SET (autovacuum_enabled = false)"))
        await session.execute(
            text(
                "INSERT INTO inbox_events (source, event_id, type, ordering_key, status, attempts, "
                "replay_base, next_attempt_at, received_at, updated_at, raw_body, payload, lane, "
                "head, stalled_attempts) "
                "SELECT 'wizehire', 'plan_' || i, 'order.created', "
                "CASE WHEN i % 3 = 0 THEN 'hot' ELSE 'k' || i END, 'queued', 0, 0, now(), now(), "
                "now(), convert_to('{}', 'UTF8'), '{}'::jsonb, 'location:L' || (i % 20), false, 0 "
                "FROM generate_series(1, 5000) AS i ORDER BY i"
            )
        )
    try:
        async with sessionmaker() as session:  # rolled back: the claim only explained
            await session.execute(inbox_repo._PIN_CLAIM_PLAN)
            now = utcnow()
            plan = (
                await session.execute(
                    text(
                        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
                        + inbox_repo._PG_CLAIM.element.text
                    ),
                    {"now": now, "limit": 32, "worker_id": "w", "lease_until": now},
                )
            ).scalar_one()
            await session.rollback()
    finally:
        async with sessionmaker.begin() as session:
            await session.execute(text("ALTER TABLE inbox_events RESET (autovacuum_enabled)"))
    top = plan[0]["Plan"]
    text_plan = json.dumps(plan)
    assert "Seq Scan" not in text_plan
    assert "ix_inbox_events_ready" in text_plan
    assert top["Actual Rows"] == 32
    buffers = top["Shared Hit Blocks"] + top["Shared Read Blocks"]
    assert buffers < 1500, f"{buffers} buffers for a claim of 32"
