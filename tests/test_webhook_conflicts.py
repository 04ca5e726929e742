"""The same event id with a different body is a conflict (409, logged), never a silent duplicate.

The inbox keeps a sha256 of each raw body: a redelivery of the same bytes stays `200 duplicate`,
another body under a stored id (say a corrected event resent under the id of a rejected one) is
`409` naming the event stored first, and nothing new is stored. On both routes, both databases.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from tests.conftest import make_settings
from tests.support.webhook_kit import (
    Ed25519TestKey,
    assert_problem,
    ghl_signed,
    new_whsec,
    stored_event,
    stored_total,
    wizehire_signed,
)
from wizesync import samples
from wizesync.config import Settings
from wizesync.db.models import InboxEvent

SECRET = new_whsec()
KEY = Ed25519TestKey.generate()


@pytest.fixture
def quiet_settings(database_url: str, engine: Any) -> Settings:
    return make_settings(
        database_url,
        worker="off",
        wizehire_webhook_secret=SECRET,
        ghl_webhook_public_key=KEY.public_pem,
    )


@pytest.fixture
async def client(client_factory: Any, quiet_settings: Settings) -> httpx.AsyncClient:
    return await client_factory(quiet_settings)


def _wizehire(body: Any) -> tuple[str, bytes, dict[str, str]]:
    signed, headers = wizehire_signed(body, SECRET, event_id="msg_conflict", timestamp=time.time())
    return "/webhooks/wizehire", signed, headers


def _ghl(body: Any) -> tuple[str, bytes, dict[str, str]]:
    signed, headers = ghl_signed(body, KEY)
    return "/webhooks/ghl", signed, headers


def _wizehire_bodies() -> tuple[Any, Any]:
    rejected = samples.wizehire_event("order.created", "wh_ord_77")
    rejected["data"]["order"]["amount"] = "150.00"  # items add up to 149.00: 422
    corrected = json.loads(json.dumps(rejected))
    corrected["data"]["order"]["amount"] = "149.00"
    return rejected, corrected


def _ghl_bodies() -> tuple[Any, Any]:
    first = samples.ghl_event("OrderCreate")
    first["webhookId"] = "wh-conflict-1"
    return first, {**first, "status": "completed"}


@pytest.mark.parametrize(
    ("send", "bodies", "first_status"),
    [
        (_wizehire, _wizehire_bodies, 422),
        (_ghl, _ghl_bodies, 202),
    ],
    ids=["wizehire", "ghl"],
)
async def test_same_id_with_another_body_is_409_naming_the_first_event(
    client: httpx.AsyncClient,
    sessionmaker: Any,
    caplog: pytest.LogCaptureFixture,
    send: Any,
    bodies: Any,
    first_status: int,
) -> None:
    first_body, second_body = bodies()
    url, body, headers = send(first_body)
    first = await client.post(url, content=body, headers=headers)
    assert first.status_code == first_status, first.text
    first_id = first.json()["id"]

    url, other, headers = send(second_body)
    with caplog.at_level(logging.WARNING):
        conflict = await client.post(url, content=other, headers=headers)

    problem = assert_problem(conflict, 409)
    assert problem["first_event_id"] == first_id
    assert str(first_id) in problem["detail"]
    assert any(r.getMessage() == "webhook id reused with a different body" for r in caplog.records)
    assert await stored_total(sessionmaker) == 1
    assert (await stored_event(sessionmaker, first_id)).raw_body == body

    # The same bytes again remain a plain duplicate.
    url, same, headers = send(first_body)
    again = await client.post(url, content=same, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json() == {"id": first_id, "status": "duplicate"}


async def test_rows_stored_before_the_hash_was_kept_compare_their_raw_body(
    client: httpx.AsyncClient, sessionmaker: Any
) -> None:
    first_body, second_body = _ghl_bodies()
    url, body, headers = _ghl(first_body)
    first_id = (await client.post(url, content=body, headers=headers)).json()["id"]
    async with sessionmaker.begin() as session:  # as a row from before the migration
        await session.execute(
            update(InboxEvent).where(InboxEvent.id == first_id).values(body_sha256=None)
        )

    assert (await client.post(url, content=body, headers=headers)).status_code == 200
    url, other, headers = _ghl(second_body)
    assert_problem(await client.post(url, content=other, headers=headers), 409)
