"""The webhooks' ASGI adapter (`inbox/asgi.py`) and the driver-level INSERT (`db/inbox_driver.py`).

The service answers `POST /webhooks/wizehire` and `POST /webhooks/ghl` without FastAPI's routing;
these tests hold it to the contract's answers, row by row, on both databases (the answers are
those the FastAPI routes gave before the adapter became the only path), and check that the driver
INSERT stores the very row the ORM path stores.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from tests.conftest import make_settings
from tests.support.webhook_kit import (
    MIB,
    Ed25519TestKey,
    assert_problem,
    ghl_signed,
    new_whsec,
    stored_total,
    wizehire_signed,
)
from wizesync import samples
from wizesync.app import create_app
from wizesync.config import Settings
from wizesync.db import inbox_driver, inbox_repo
from wizesync.db.errors import is_db_unavailable
from wizesync.db.inbox_repo import NewEvent
from wizesync.db.models import EventStatus, InboxEvent

SECRET = new_whsec()
KEY = Ed25519TestKey.generate()
WIZEHIRE, GHL = "/webhooks/wizehire", "/webhooks/ghl"

# method, path, body (a list of chunks: sent chunked, without content-length), headers
Request = tuple[str, str, Any, dict[str, str]]


@pytest.fixture
def postgres_only(is_postgres: bool) -> None:
    if not is_postgres:
        pytest.skip("the driver-level INSERT is PostgreSQL's path")


@pytest.fixture
def quiet_settings(database_url: str, engine: Any) -> Settings:
    return make_settings(
        database_url,
        worker="off",
        wizehire_webhook_secret=SECRET,
        ghl_webhook_public_key=KEY.public_pem,
    )


def _wizehire(payload: Any, event_id: str, **changes: Any) -> Request:
    body, headers = wizehire_signed(payload, SECRET, event_id=event_id)
    headers.update(changes)
    return "POST", WIZEHIRE, body, headers


def _order(tag: str) -> dict[str, Any]:
    return samples.wizehire_event("order.created", f"wh_ord_{tag}")


def _ghl(payload: dict[str, Any], **changes: str) -> Request:
    body, headers = ghl_signed(payload, KEY)
    headers.update(changes)
    return "POST", GHL, body, headers


def _rows(tag: str) -> list[tuple[str, list[Request]]]:
    """The contract's rows; each a list of requests whose last answer is compared. `tag` makes
    every id unique to one app, so both apps can share the database."""
    quarantined = _order(tag)
    del quarantined["data"]["order"]["id"]
    stale = samples.ghl_event("OrderCreate")
    stale["timestamp"] = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    ghl_order = samples.ghl_event("OrderCreate")
    ghl_order["webhookId"] = f"ghl_{tag}"
    duplicate, reused = _order(tag), _order(tag)
    reused["data"]["order"]["status"] = "pending"
    not_json = _wizehire(_order(tag), f"ct_{tag}")
    not_json[3]["content-type"] = "text/plain"
    return [
        ("queued", [_wizehire(_order(tag), f"q_{tag}")]),
        ("duplicate", [_wizehire(duplicate, f"d_{tag}"), _wizehire(duplicate, f"d_{tag}")]),
        (
            "id reused, other body",
            [_wizehire(duplicate, f"r_{tag}"), _wizehire(reused, f"r_{tag}")],
        ),
        ("ignored", [_wizehire({"type": "order.archived", "data": {}}, f"i_{tag}")]),
        ("quarantined 422", [_wizehire(quarantined, f"x_{tag}")]),
        ("not JSON body", [_wizehire(b"{not json", f"nj_{tag}")]),
        ("bad signature", [_wizehire(_order(tag), f"s_{tag}", **{"webhook-signature": "v1,AAAA"})]),
        ("missing headers", [("POST", WIZEHIRE, b"{}", {"content-type": "application/json"})]),
        (
            "declared too large",
            [
                (
                    "POST",
                    WIZEHIRE,
                    b"{}",
                    {"content-type": "application/json", "content-length": str(MIB + 1)},
                )
            ],
        ),
        ("too large", [_wizehire(b"[" + b" " * MIB + b"]", f"big_{tag}")]),
        # No content-length: the size is only known while reading.
        (
            "too large, streamed",
            [
                (
                    "POST",
                    WIZEHIRE,
                    [b"[" + b" " * (MIB // 2)] * 3,
                    {"content-type": "application/json"},
                )
            ],
        ),
        ("content type", [not_json]),
        ("ghl queued", [_ghl(ghl_order)]),
        ("ghl duplicate", [_ghl(ghl_order)]),
        ("ghl stale", [_ghl(stale)]),
        ("ghl unsigned", [("POST", GHL, b"{}", {"content-type": "application/json"})]),
        (
            "ghl bad signature",
            [_ghl(samples.ghl_event("OrderCreate"), **{"x-ghl-signature": "AAAA"})],
        ),
        ("GET (405)", [("GET", WIZEHIRE, b"", {})]),
    ]


async def _chunks(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def _normalised(response: httpx.Response) -> tuple[int, str, str | None, Any]:
    content = response.json()
    if isinstance(content, dict) and "id" in content:
        content["id"] = "<id>"
    if isinstance(content, dict) and "first_event_id" in content:
        content["first_event_id"] = "<id>"
        content["detail"] = re.sub(r"event \d+", "event <id>", content["detail"])
    if isinstance(content, dict) and "detail" in content:
        # A stale timestamp's skew in seconds grows while the test runs.
        content["detail"] = re.sub(r"\d+ s away", "N s away", content["detail"])
    return (
        response.status_code,
        response.headers["content-type"],
        response.headers.get("retry-after"),
        content,
    )


async def _answers(
    client: httpx.AsyncClient, rows: list[tuple[str, list[Request]]]
) -> dict[str, tuple[int, str, str | None, Any]]:
    out = {}
    for name, requests in rows:
        for method, path, body, headers in requests:
            content = _chunks(body) if isinstance(body, list) else body
            response = await client.request(method, path, content=content, headers=headers)
        out[name] = _normalised(response)
    return out


# Row -> (status, content type, problem title, problem detail); None where the answer is JSON.
EXPECTED: dict[str, tuple[int, str, str | None, str | None]] = {
    "queued": (202, "application/json", None, None),
    "duplicate": (200, "application/json", None, None),
    "id reused, other body": (
        409,
        "application/problem+json",
        "Conflict",
        "this event id was first stored as event <id> with a different body; "
        "send a changed event under a new id",
    ),
    "ignored": (202, "application/json", None, None),
    "quarantined 422": (
        422,
        "application/problem+json",
        "Unprocessable Content",
        "the event does not match its schema; it is stored quarantined",
    ),
    "not JSON body": (
        422,
        "application/problem+json",
        "Unprocessable Content",
        "the event does not match its schema; it is stored quarantined",
    ),
    "bad signature": (
        401,
        "application/problem+json",
        "Unauthorized",
        "No matching signature found",
    ),
    "missing headers": (
        401,
        "application/problem+json",
        "Unauthorized",
        "webhook-id/timestamp/signature required",
    ),
    "declared too large": (
        413,
        "application/problem+json",
        "Content Too Large",
        "body over 1048576 bytes",
    ),
    "too large": (413, "application/problem+json", "Content Too Large", "body over 1048576 bytes"),
    "too large, streamed": (
        413,
        "application/problem+json",
        "Content Too Large",
        "body over 1048576 bytes",
    ),
    "content type": (
        415,
        "application/problem+json",
        "Unsupported Media Type",
        "webhooks must be sent as application/json",
    ),
    "ghl queued": (202, "application/json", None, None),
    "ghl duplicate": (200, "application/json", None, None),
    "ghl stale": (
        401,
        "application/problem+json",
        "Unauthorized",
        "timestamp is N s away from now",
    ),
    "ghl unsigned": (401, "application/problem+json", "Unauthorized", "no X-GHL-Signature header"),
    "ghl bad signature": (
        401,
        "application/problem+json",
        "Unauthorized",
        "X-GHL-Signature does not verify",
    ),
    "GET (405)": (405, "application/problem+json", "Method Not Allowed", "Method Not Allowed"),
}


async def test_every_contract_row_is_answered_as_the_contract_says(
    client_factory: Any,
    quiet_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served: list[str] = []
    import wizesync.app as app_module

    real = app_module.serve_webhook

    async def spy(scope: Any, *args: Any) -> None:
        served.append(scope["method"])
        await real(scope, *args)

    monkeypatch.setattr(app_module, "serve_webhook", spy)
    answers = await _answers(await client_factory(quiet_settings), _rows("one"))

    assert served == ["POST"] * 19 + ["GET"]  # every request of the rows (duplicates post twice)
    got = {
        name: (
            status,
            content_type,
            content.get("title") if status >= 400 else None,
            content.get("detail") if status >= 400 else None,
        )
        for name, (status, content_type, _, content) in answers.items()
    }
    assert got == EXPECTED
    for name, (status, _, retry_after, content) in answers.items():
        assert retry_after is None, name
        if status < 400:
            assert content["id"] == "<id>", name
        else:
            assert content["type"] == "about:blank" and content["status"] == status, name
    assert answers["queued"][3]["status"] == "queued"
    assert answers["ignored"][3]["status"] == "ignored"
    assert answers["duplicate"][3]["status"] == "duplicate"
    assert answers["id reused, other body"][3]["first_event_id"] == "<id>"
    assert answers["quarantined 422"][3]["errors"] == [
        {"loc": "data.order.id", "msg": "Field required"}
    ]
    assert answers["quarantined 422"][3]["id"] == "<id>"


async def test_other_methods_on_a_webhook_path_are_405_naming_post(
    client_factory: Any, quiet_settings: Settings
) -> None:
    client = await client_factory(quiet_settings)
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        for path in (WIZEHIRE, GHL):
            response = await client.request(method, path)
            assert_problem(response, 405)
            assert response.headers["allow"] == "POST"


async def test_a_webhook_behind_a_root_path_is_served(
    database_url: str, engine: Any, quiet_settings: Settings, sessionmaker: Any
) -> None:
    app = create_app(quiet_settings)
    method, path, body, headers = _wizehire(_order("rooted"), "rooted_1")
    transport = httpx.ASGITransport(app=app, root_path="/sync")
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.request(method, "/sync" + path, content=body, headers=headers)
            unknown = await client.post("/sync/webhooks/other", content=b"{}")
    assert response.status_code == 202, response.text
    assert await stored_total(sessionmaker) == 1
    assert unknown.status_code == 404


def test_the_openapi_document_describes_both_webhooks() -> None:
    paths = create_app(make_settings("sqlite+aiosqlite://")).openapi()["paths"]
    wizehire, ghl = paths[WIZEHIRE]["post"], paths[GHL]["post"]
    assert [p["name"] for p in wizehire["parameters"]] == [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    ]
    assert [p["name"] for p in ghl["parameters"]] == ["x-ghl-signature"]
    assert {"200", "202", "401", "409", "413", "415", "422", "503"} == set(wizehire["responses"])
    assert "422" not in ghl["responses"]  # a GHL body that is not an event is stored, 202
    assert wizehire["tags"] == ghl["tags"] == ["webhooks"]


async def test_database_unreachable_is_503_problem_with_retry_after(
    client_factory: Any,
    database_url: str,
    tmp_path: Any,
) -> None:
    if database_url.startswith("postgresql"):
        # Nothing listens on port 1: the pool's connect fails at once.
        down = make_url(database_url).set(port=1).render_as_string(hide_password=False)
    else:
        down = f"sqlite+aiosqlite:///{tmp_path}/missing/dir/wizesync.db"
    client = await client_factory(make_settings(down, worker="off", wizehire_webhook_secret=SECRET))
    method, path, body, headers = _wizehire(_order("down"), "down_1")

    response = await client.request(method, path, content=body, headers=headers)

    assert_problem(response, 503)
    assert int(response.headers["retry-after"]) > 0


@pytest.mark.postgres_only
@pytest.mark.usefixtures("postgres_only")
async def test_connection_lost_during_the_driver_insert_is_503_then_recovers(
    client_factory: Any,
    quiet_settings: Settings,
    sessionmaker: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = await client_factory(quiet_settings)
    real = asyncpg.Connection.fetchval

    async def lost(self: asyncpg.Connection, *args: Any, **kwargs: Any) -> Any:
        raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle")

    method, path, body, headers = _wizehire(_order("lost"), "lost_1")
    monkeypatch.setattr(asyncpg.Connection, "fetchval", lost)
    response = await client.request(method, path, content=body, headers=headers)
    assert_problem(response, 503)
    assert int(response.headers["retry-after"]) > 0
    assert await stored_total(sessionmaker) == 0

    monkeypatch.setattr(asyncpg.Connection, "fetchval", real)
    retried = await client.request(method, path, content=body, headers=headers)
    assert retried.status_code == 202, retried.text


@pytest.mark.postgres_only
@pytest.mark.usefixtures("postgres_only")
async def test_driver_errors_other_than_connection_loss_are_a_500_not_a_503(
    client_factory: Any,
    quiet_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = await client_factory(quiet_settings)

    async def broken(self: asyncpg.Connection, *args: Any, **kwargs: Any) -> Any:
        raise asyncpg.CheckViolationError("new row violates check constraint")

    monkeypatch.setattr(asyncpg.Connection, "fetchval", broken)
    method, path, body, headers = _wizehire(_order("bug"), "bug_1")
    response = await client.request(method, path, content=body, headers=headers)
    problem = assert_problem(response, 500)
    assert "retry-after" not in response.headers
    assert problem["detail"] == "an unexpected error occurred"


def test_driver_connection_loss_counts_as_database_unavailable() -> None:
    cause = asyncpg.ConnectionDoesNotExistError("gone")
    try:
        raise inbox_driver.DriverConnectionLost("lost") from cause
    except inbox_driver.DriverConnectionLost as exc:
        assert is_db_unavailable(exc)
    assert inbox_driver._unavailable(asyncpg.AdminShutdownError("shutdown"), None)
    assert inbox_driver._unavailable(ConnectionResetError(), None)
    assert not inbox_driver._unavailable(asyncpg.UniqueViolationError("dup"), None)


EVENTS: list[Callable[[str], NewEvent]] = [
    lambda event_id: NewEvent(
        source="wizehire",
        event_id=event_id,
        type="order.created",
        ordering_key="wizehire:order:1",
        status=EventStatus.QUEUED,
        raw_body=b'{"a": 1.50}',
        payload={"a": 1.5, "nested": {"list": [1, "x", None]}, "text": "caf\u00e9"},
    ),
    lambda event_id: NewEvent(
        source="ghl",
        event_id=event_id,
        type="ContactCreate",
        ordering_key=None,
        status=EventStatus.IGNORED,
        raw_body=b"{}",
        payload={},
    ),
    lambda event_id: NewEvent(
        source="wizehire",
        event_id=event_id,
        type="unknown",
        ordering_key=None,
        status=EventStatus.QUARANTINED,
        raw_body=b"\xff not json",
        payload=None,
        last_error="body: body is not JSON",
    ),
]


@pytest.mark.postgres_only
@pytest.mark.usefixtures("postgres_only")
@pytest.mark.parametrize("make", EVENTS, ids=["queued", "ignored", "quarantined"])
async def test_driver_insert_stores_the_row_the_orm_insert_stores(
    engine: Any,
    sessionmaker: Any,
    make: Callable[[str], NewEvent],
) -> None:
    orm_id = f"orm_{uuid.uuid4().hex}"
    driver_id = f"drv_{uuid.uuid4().hex}"
    async with sessionmaker.begin() as session:
        first = await inbox_repo.insert_event(session, make(orm_id))
    second, existing = await inbox_driver.store_event(engine, make(driver_id))
    assert first and second and existing is None

    duplicate, existing = await inbox_driver.store_event(engine, make(driver_id))
    assert duplicate is None and existing is not None and existing.id == second
    assert existing.body_sha256 == hashlib.sha256(make(driver_id).raw_body).hexdigest()

    # `head` is the key's line (the first of two events of one key heads it), not the path's.
    columns = [
        c
        for c in InboxEvent.__table__.columns
        if c.name
        not in (
            "id",
            "event_id",
            "next_attempt_at",
            "received_at",
            "updated_at",
            "handled_at",
            "head",
        )
    ]
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(*columns, InboxEvent.handled_at.is_(None), InboxEvent.id)
                .where(InboxEvent.id.in_([first, second]))
                .order_by(InboxEvent.id)
            )
        ).all()
        # JSON null is not SQL NULL: both paths must store the same one.
        kinds = (
            (
                await conn.execute(
                    text(
                        "SELECT jsonb_typeof(payload) FROM inbox_events"
                        " WHERE id IN (:a, :b) ORDER BY id"
                    ),
                    {"a": first, "b": second},
                )
            )
            .scalars()
            .all()
        )
    orm_row, driver_row = (tuple(row)[:-1] for row in rows)
    assert driver_row == orm_row
    assert kinds[0] == kinds[1]


def test_json_rendering_is_starlettes() -> None:
    from fastapi.responses import JSONResponse

    from wizesync.inbox.asgi import render

    content = {"id": 7, "status": "caf\u00e9", "errors": [{"loc": "a.b", "msg": "x"}]}
    assert render(content) == JSONResponse(content).body
    assert json.loads(render(content)) == content


def test_app_is_still_fastapi() -> None:
    from fastapi import FastAPI

    assert isinstance(create_app(make_settings("sqlite+aiosqlite://")), FastAPI)
