"""Ordering: one ordering key's events never overlap and run in arrival order; others run in
parallel. Checked inside one worker, across two workers in one process, and as a property."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_settings
from tests.support.waiting import wait_all_done
from tests.support.worker_harness import SOURCE, TYPE, RunLog, add_event, running_worker
from wizesync.db.engine import create_engine, create_sessionmaker
from wizesync.db.models import EventStatus
from wizesync.inbox.context import EventContext, PermanentFailure
from wizesync.inbox.registry import HandlerRegistry

CONCURRENCY = 8
BARRIER_WAIT = 30.0


def registry_for(handler) -> HandlerRegistry:  # type: ignore[no-untyped-def]
    registry = HandlerRegistry()
    registry.add(SOURCE, TYPE, handler)
    return registry


async def add_interleaved(sessionmaker, keys: list[str | None]) -> dict[str | None, list[int]]:
    """Store one event per entry, in order; the inbox ids per key, in arrival order."""
    ids: dict[str | None, list[int]] = defaultdict(list)
    for key in keys:
        ids[key].append(await add_event(sessionmaker, key=key))
    return dict(ids)


def assert_ordered(run_log: RunLog, ids_by_key: dict[str | None, list[int]]) -> None:
    assert run_log.overlaps() == []
    starts = run_log.starts_by_key()
    for key, ids in ids_by_key.items():
        if key is not None:
            assert starts[key] == ids, f"key {key} ran out of arrival order"


async def test_one_keys_events_never_overlap_and_run_in_arrival_order(
    database_url, sessionmaker
) -> None:
    keys = [f"order-{i % 3}" for i in range(30)]
    keys[5:5] = [None] * 3
    keys[20:20] = [None] * 3
    ids_by_key = await add_interleaved(sessionmaker, keys)
    run_log = RunLog()

    settings = make_settings(database_url, worker_concurrency=CONCURRENCY)
    async with running_worker(settings, sessionmaker, registry_for(run_log.handler())):
        events = await wait_all_done(sessionmaker, [i for ids in ids_by_key.values() for i in ids])

    assert_ordered(run_log, ids_by_key)
    assert set(run_log.starts().values()) == {1}
    assert all(event.attempts == 1 for event in events)
    # The keys ran beside each other: the worker is not simply serial.
    assert run_log.max_parallel() > 1


async def test_events_of_different_keys_or_without_a_key_run_at_the_same_time(
    database_url, sessionmaker
) -> None:
    """Every handler waits at a barrier for all the others: only parallel runs pass it."""
    keys: list[str | None] = ["order-a", "order-b", "order-c", "order-d", None, None]
    barrier = asyncio.Barrier(len(keys))

    async def meet(ctx: EventContext) -> None:
        try:
            await asyncio.wait_for(barrier.wait(), BARRIER_WAIT)
        except (TimeoutError, asyncio.BrokenBarrierError):
            raise PermanentFailure("the other handlers never ran alongside") from None

    ids = [await add_event(sessionmaker, key=key) for key in keys]
    settings = make_settings(database_url, worker_concurrency=CONCURRENCY)
    async with running_worker(settings, sessionmaker, registry_for(meet)):
        await wait_all_done(sessionmaker, ids)


async def test_an_events_retry_holds_back_the_rest_of_its_key(database_url, sessionmaker) -> None:
    """Arrival order holds across retries: the second event waits for the first to succeed."""
    run_log = RunLog()

    async def fail_first_attempt_of_the_first(ctx: EventContext) -> None:
        if ctx.event.id == first and ctx.event.attempt < 3:
            raise RuntimeError("transient")

    first = await add_event(sessionmaker, key="order-1")
    second = await add_event(sessionmaker, key="order-1")
    settings = make_settings(database_url, worker_concurrency=CONCURRENCY)
    handler = run_log.handler(fail_first_attempt_of_the_first)
    async with running_worker(settings, sessionmaker, registry_for(handler)):
        await wait_all_done(sessionmaker, [first, second])

    assert run_log.starts_by_key() == {"order-1": [first, first, first, second]}


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    plan=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", None]), st.booleans()),
        min_size=1,
        max_size=14,
    )
)
async def test_any_interleaving_of_keys_keeps_each_keys_order(
    database_url, sessionmaker, plan: list[tuple[str | None, bool]]
) -> None:
    """Random interleavings of a few keys, some events failing their first attempt."""
    prefix = uuid.uuid4().hex[:6]  # examples share the database: keys must not collide
    keys = [f"{prefix}-{key}" if key is not None else None for key, _ in plan]
    all_ids = [await add_event(sessionmaker, key=key) for key in keys]
    flaky = {i for i, (_, fails) in zip(all_ids, plan, strict=True) if fails}
    ids_by_key: dict[str | None, list[int]] = defaultdict(list)
    for i, key in zip(all_ids, keys, strict=True):
        ids_by_key[key].append(i)
    run_log = RunLog()

    async def body(ctx: EventContext) -> None:
        await asyncio.sleep(0.002)
        if ctx.event.id in flaky and ctx.event.attempt == 1:
            raise RuntimeError("first attempt fails")

    settings_ = make_settings(database_url, worker_concurrency=CONCURRENCY)
    async with running_worker(settings_, sessionmaker, registry_for(run_log.handler(body))):
        await wait_all_done(sessionmaker, all_ids)

    assert run_log.overlaps() == []
    starts = run_log.starts_by_key()
    for key, ids in ids_by_key.items():
        if key is not None:
            expected = [i for i in ids for _ in range(2 if i in flaky else 1)]
            assert starts[key] == expected
    assert run_log.starts() == {i: 2 if i in flaky else 1 for i in all_ids}


async def test_two_workers_keep_each_keys_order_and_run_every_event_once(
    database_url, sessionmaker
) -> None:
    keys: list[str | None] = []
    for i in range(36):
        keys.append(None if i % 3 == 2 else f"order-{i % 4}")
    ids_by_key = await add_interleaved(sessionmaker, keys)
    all_ids = [i for ids in ids_by_key.values() for i in ids]
    run_log = RunLog()
    joined: set[str] = set()
    both_working = asyncio.Event()

    def handler_of(worker_name: str):  # type: ignore[no-untyped-def]
        async def body(ctx: EventContext) -> None:
            # Hold the first events until the other worker runs one too, so both take part.
            joined.add(worker_name)
            if len(joined) == 2:
                both_working.set()
            await asyncio.wait_for(both_working.wait(), BARRIER_WAIT)
            await asyncio.sleep(0.003)

        return run_log.handler(body)

    # Each worker has its own engine, as separate processes would.
    second_engine = create_engine(database_url)
    try:
        settings_ = make_settings(database_url, worker_concurrency=4)
        async with (
            running_worker(
                settings_, sessionmaker, registry_for(handler_of("a")), worker_id="worker-a"
            ),
            running_worker(
                settings_,
                create_sessionmaker(second_engine),
                registry_for(handler_of("b")),
                worker_id="worker-b",
            ),
        ):
            events = await wait_all_done(sessionmaker, all_ids)
    finally:
        await second_engine.dispose()

    assert_ordered(run_log, ids_by_key)
    assert run_log.starts() == dict.fromkeys(all_ids, 1)
    workers = set()
    for event in events:
        assert event.attempts == 1
        [attempt] = event.attempt_log
        assert attempt.outcome == EventStatus.DONE
        workers.add(attempt.worker_id)
    assert workers == {"worker-a", "worker-b"}
