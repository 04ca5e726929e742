"""Edges of the ingest path's fast handling: a sender hanging up mid-body, and a
pooled PostgreSQL connection the server terminated (replaced at checkout, without pre-ping)."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.support.waiting import eventually
from wizesync.app import create_app
from wizesync.config import Settings
from wizesync.db import inbox_repo
from wizesync.db.engine import create_engine, create_sessionmaker
from wizesync.ops import metrics


def _rejected(reason: str) -> float:
    sample = metrics.WEBHOOKS.labels(source="wizehire", outcome="rejected", reason=reason)
    return sample._value.get()  # type: ignore[attr-defined]


async def test_sender_disconnecting_mid_body_is_rejected_not_a_500(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings)
    # The first half of a body, then the sender is gone.
    incoming: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"type": "order.cre', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/webhooks/wizehire",
        "raw_path": b"/webhooks/wizehire",
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 40000),
        "server": ("test", 80),
        "headers": [
            (b"host", b"test"),
            (b"content-type", b"application/json"),
            (b"content-length", b"400"),
        ],
    }
    before = _rejected("client_disconnected")
    async with app.router.lifespan_context(app):
        with caplog.at_level(logging.WARNING):
            await app(scope, receive, send)
        async with app.state.wizesync.sessionmaker() as session:
            counts = await inbox_repo.queue_counts(session)

    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert _rejected("client_disconnected") == before + 1
    assert sum(counts.values()) == 0


@pytest.mark.postgres_only
async def test_pooled_connection_terminated_by_the_server_is_replaced_not_used(
    postgres_url: str,
) -> None:
    engine = create_engine(postgres_url, pool_size=1)
    sessionmaker = create_sessionmaker(engine)
    dsn = make_url(postgres_url).set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(dsn)
    try:
        async with sessionmaker() as session:
            first = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            pooled = (await (await session.connection()).get_raw_connection()).driver_connection
        await admin.execute("SELECT pg_terminate_backend($1)", first)

        async def gone() -> bool:
            count = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", first
            )
            return not count

        await eventually(gone, timeout=30, what="the backend to go away")
        # The backend leaving pg_stat_activity can come a moment before its goodbye reaches
        # the client's socket; the checkout check reads what the driver has seen (a checkout
        # racing that moment fails once, is invalidated, and the caller answers 503/retries).
        await eventually(_closed(pooled), what="the driver to see the connection closed")

        # The only pooled connection is dead: the next unit of work gets a new one, no error.
        async with sessionmaker() as session:
            second = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert second != first
    finally:
        await admin.close()
        await engine.dispose()


def _closed(connection: Any) -> Any:
    async def check() -> bool:
        return bool(connection.is_closed())

    return check
