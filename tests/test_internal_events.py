"""Internal events: follow-up work queued by a handler gets what a webhook gets (idempotent
enqueue, its ordering key's line, retries, replay)."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.conftest import make_settings
from tests.support.waiting import wait_for_status
from tests.support.worker_harness import add_event, running_worker
from wizesync.db.models import EventStatus, InboxEvent, Source
from wizesync.inbox import internal
from wizesync.inbox.context import EventContext
from wizesync.inbox.registry import HandlerRegistry
from wizesync.inbox.replay import replay


async def _queue(sessionmaker, event_id: str, key: str | None = "wizehire:order:o1") -> int | None:
    async with sessionmaker.begin() as session:
        return await internal.enqueue(
            session,
            type_="test.follow_up",
            event_id=event_id,
            ordering_key=key,
            payload={"sync_order_id": 7},
        )


async def test_the_same_follow_up_is_queued_once(database_url, sessionmaker) -> None:
    first = await _queue(sessionmaker, "follow:1")
    again = await _queue(sessionmaker, "follow:1")
    other = await _queue(sessionmaker, "follow:2")

    assert first is not None and other is not None and first != other
    assert again is None
    async with sessionmaker() as session:
        rows = (
            (await session.execute(select(InboxEvent).where(InboxEvent.source == Source.INTERNAL)))
            .scalars()
            .all()
        )
    assert sorted(r.event_id for r in rows) == ["follow:1", "follow:2"]
    row = next(r for r in rows if r.event_id == "follow:1")
    assert row.status == EventStatus.QUEUED
    assert row.payload == {"sync_order_id": 7}
    assert row.raw_body == b'{"sync_order_id":7}'


async def test_rolled_back_work_queues_nothing(database_url, sessionmaker) -> None:
    class Boom(Exception):
        pass

    try:
        async with sessionmaker.begin() as session:
            await internal.enqueue(
                session, type_="test.follow_up", event_id="follow:x", ordering_key=None, payload={}
            )
            raise Boom
    except Boom:
        pass
    async with sessionmaker() as session:
        count = await session.scalar(select(func.count()).select_from(InboxEvent))
    assert count == 0


async def test_follow_up_waits_behind_its_key_runs_and_replays(database_url, sessionmaker) -> None:
    seen: list[str] = []
    registry = HandlerRegistry()

    async def webhook(ctx: EventContext) -> None:
        seen.append("webhook")
        # Queued by the handler, in its own unit of work, on the same key: runs after this one.
        async with ctx.unit_of_work() as session:
            await internal.enqueue(
                session,
                type_="test.follow_up",
                event_id="follow:run",
                ordering_key=ctx.event.ordering_key,
                payload={"n": 1},
            )

    async def follow_up(ctx: EventContext) -> None:
        assert ctx.event.source == Source.INTERNAL
        seen.append(f"follow_up {ctx.event.payload['n']}")

    registry.add("wizehire", "order.created", webhook)
    registry.add(Source.INTERNAL, "test.follow_up", follow_up)
    first = await add_event(sessionmaker, key="wizehire:order:o1")

    async with running_worker(make_settings(database_url), sessionmaker, registry):
        await wait_for_status(sessionmaker, first, EventStatus.DONE)
        async with sessionmaker() as session:
            follow_id = await session.scalar(
                select(InboxEvent.id).where(InboxEvent.event_id == "follow:run")
            )
        assert follow_id is not None
        await wait_for_status(sessionmaker, follow_id, EventStatus.DONE)
        assert await replay(sessionmaker, follow_id) == EventStatus.QUEUED
        await wait_for_status(sessionmaker, follow_id, EventStatus.DONE)

    assert seen == ["webhook", "follow_up 1", "follow_up 1"]
