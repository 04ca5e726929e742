"""The same event posted 50 times at once: one row, 49 "duplicate" answers, one handler run.

The 50 requests are concurrent asyncio tasks through httpx's ASGITransport, against an app whose
engine has its normal connection pool; the test watches that pool to prove the requests really
held several connections (so several transactions) at the same time.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

import wizesync.app
from tests.conftest import make_settings
from tests.support.waiting import wait_for_status
from tests.support.webhook_kit import (
    Ed25519TestKey,
    counts_delta,
    ghl_signed,
    new_whsec,
    stored_event,
    stored_total,
    webhook_counts,
    wizehire_signed,
)
from wizesync import samples
from wizesync.inbox.context import EventContext
from wizesync.inbox.registry import HandlerRegistry

COPIES = 50
SECRET = new_whsec()
KEY = Ed25519TestKey.generate()


class PoolWatch:
    """Counts connections checked out of one engine's pool by a chosen set of tasks."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        self._held: set[int] = set()
        self.peak = 0

    def attach(self, engine: AsyncEngine) -> None:
        pool = engine.sync_engine.pool
        event.listen(pool, "checkout", self._checkout)
        event.listen(pool, "checkin", self._checkin)

    def _checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if asyncio.current_task() in self.tasks:
            self._held.add(id(dbapi_connection))
            self.peak = max(self.peak, len(self._held))

    def _checkin(self, dbapi_connection: Any, _record: Any) -> None:
        self._held.discard(id(dbapi_connection))


@pytest.fixture
def pool_watch(monkeypatch: pytest.MonkeyPatch) -> PoolWatch:
    """Spies on the engine the app's lifespan builds."""
    watch = PoolWatch()
    build = wizesync.app.create_engine

    def spy(*args: Any, **kwargs: Any) -> AsyncEngine:
        engine = build(*args, **kwargs)
        watch.attach(engine)
        return engine

    monkeypatch.setattr(wizesync.app, "create_engine", spy)
    return watch


def _request(variant: str) -> tuple[str, str, str, bytes, dict[str, str]]:
    """(source, event type, url, body, headers) of one signed event."""
    if variant == "wizehire":
        body, headers = wizehire_signed(samples.wizehire_event("order.created"), SECRET)
        return "wizehire", "order.created", "/webhooks/wizehire", body, headers
    payload = samples.ghl_event("OrderCreate")
    if variant == "ghl-body-hash":
        del payload["webhookId"]
    body, headers = ghl_signed(json.dumps(payload).encode(), KEY)
    return "ghl", "OrderCreate", "/webhooks/ghl", body, headers


@pytest.mark.parametrize("variant", ["wizehire", "ghl-webhook-id", "ghl-body-hash"])
async def test_same_event_posted_50_times_concurrently_is_stored_and_handled_once(
    client_factory: Any,
    database_url: str,
    engine: AsyncEngine,
    sessionmaker: Any,
    pool_watch: PoolWatch,
    variant: str,
) -> None:
    source, event_type, url, body, headers = _request(variant)
    runs: Counter[int] = Counter()

    async def count_runs(ctx: EventContext) -> None:
        runs[ctx.event.id] += 1
        await asyncio.sleep(0.05)  # long enough for late duplicates to overlap the run

    registry = HandlerRegistry()
    registry.add(source, event_type, count_runs)
    client: httpx.AsyncClient = await client_factory(
        make_settings(
            database_url, wizehire_webhook_secret=SECRET, ghl_webhook_public_key=KEY.public_pem
        ),
        registry=registry,
    )
    before = await webhook_counts(client)

    posts = [
        asyncio.create_task(client.post(url, content=body, headers=headers)) for _ in range(COPIES)
    ]
    pool_watch.tasks.update(posts)
    answers = await asyncio.gather(*posts)

    statuses = Counter((r.status_code, r.json()["status"]) for r in answers)
    assert statuses == {(202, "queued"): 1, (200, "duplicate"): COPIES - 1}, statuses
    ids = {r.json()["id"] for r in answers}
    assert len(ids) == 1, ids
    row_id = ids.pop()

    done = await wait_for_status(sessionmaker, row_id, "done")
    assert runs == {row_id: 1}
    assert done.attempts == 1
    assert [a.outcome for a in done.attempt_log] == ["done"]
    assert done.raw_body == body
    assert await stored_total(sessionmaker) == 1
    assert counts_delta(before, await webhook_counts(client)) == {
        (source, "accepted", ""): 1.0,
        (source, "duplicate", ""): float(COPIES - 1),
    }
    # Several request transactions held pooled connections at the same time (on SQLite they
    # then queue on the write lock that BEGIN IMMEDIATE takes).
    assert pool_watch.peak > 1, pool_watch.peak


async def test_different_events_posted_concurrently_are_each_stored_once(
    client_factory: Any,
    database_url: str,
    engine: AsyncEngine,
    sessionmaker: Any,
) -> None:
    """The dedupe keys on the event id only: 25 distinct events, each sent twice, all at once."""
    client: httpx.AsyncClient = await client_factory(
        make_settings(database_url, worker="off", wizehire_webhook_secret=SECRET)
    )
    requests = [wizehire_signed(samples.wizehire_event("order.created"), SECRET) for _ in range(25)]

    answers = await asyncio.gather(
        *(
            client.post("/webhooks/wizehire", content=body, headers=headers)
            for body, headers in requests * 2
        )
    )

    assert Counter(r.status_code for r in answers) == {202: 25, 200: 25}
    assert await stored_total(sessionmaker) == 25
    by_event: dict[str, set[int]] = {}
    for (_, headers), answer in zip(requests * 2, answers, strict=True):
        by_event.setdefault(headers["webhook-id"], set()).add(answer.json()["id"])
    assert all(len(row_ids) == 1 for row_ids in by_event.values())
    for webhook_id, row_ids in by_event.items():
        row = await stored_event(sessionmaker, row_ids.pop())
        assert (row.event_id, row.status) == (webhook_id, "queued")
