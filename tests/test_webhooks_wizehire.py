"""`POST /webhooks/wizehire`: every row of the contract's webhook answer table, both databases."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from tests.conftest import make_settings
from tests.support.webhook_kit import (
    assert_problem,
    counts_delta,
    new_whsec,
    stored_event,
    stored_total,
    webhook_counts,
    wizehire_signed,
)
from wizesync import samples
from wizesync.config import Settings
from wizesync.wizehire.events import WIZEHIRE_EVENT_MODELS

SECRET = new_whsec()
URL = "/webhooks/wizehire"


@pytest.fixture
def quiet_settings(database_url: str, engine: Any) -> Settings:
    """No in-process worker: a stored row keeps the status the webhook gave it."""
    return make_settings(database_url, worker="off", wizehire_webhook_secret=SECRET)


@pytest.fixture
async def client(client_factory: Any, quiet_settings: Settings) -> httpx.AsyncClient:
    return await client_factory(quiet_settings)


def order_event(order_id: str = "wh_ord_1001", **order_changes: Any) -> dict[str, Any]:
    event = samples.wizehire_event("order.created", order_id)
    event["data"]["order"].update(order_changes)
    return event


# --- valid, new -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "expected_key"),
    [
        ("order.created", "wizehire:order:wh_ord_1001"),
        ("order.updated", "wizehire:order:wh_ord_1001"),
        # A refund queues behind its order: its key is the order's, not the refund's.
        ("refund.requested", "wizehire:order:wh_ord_1001"),
    ],
)
async def test_new_event_is_queued_with_raw_body_payload_type_and_order_key(
    client: httpx.AsyncClient, sessionmaker: Any, event_type: str, expected_key: str
) -> None:
    # Odd spacing and key order: the stored raw body must be the bytes as sent.
    payload = samples.wizehire_event(event_type, "wh_ord_1001")
    raw = json.dumps(payload, indent=3, sort_keys=True).encode()
    body, headers = wizehire_signed(raw, SECRET, event_id="msg_new_1")

    response = await client.post(URL, content=body, headers=headers)

    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer == {"id": answer["id"], "status": "queued"}
    assert isinstance(answer["id"], int)
    row = await stored_event(sessionmaker, answer["id"])
    assert (row.source, row.event_id, row.type) == ("wizehire", "msg_new_1", event_type)
    assert row.status == "queued"
    assert row.ordering_key == expected_key
    assert row.raw_body == raw
    assert row.payload == payload
    assert row.last_error is None


# --- duplicates -------------------------------------------------------------------------------


async def test_same_webhook_id_again_answers_duplicate_and_stores_nothing_new(
    client: httpx.AsyncClient, sessionmaker: Any
) -> None:
    first_body, headers = wizehire_signed(order_event(), SECRET, event_id="msg_dup")
    first = await client.post(URL, content=first_body, headers=headers)
    assert first.status_code == 202, first.text

    # A redelivery is signed afresh (new timestamp), with the same body (tests/
    # test_webhook_conflicts.py: another body under the id is a 409).
    body, headers = wizehire_signed(
        first_body, SECRET, event_id="msg_dup", timestamp=time.time() - 30
    )
    again = await client.post(URL, content=body, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json() == {"id": first.json()["id"], "status": "duplicate"}

    assert await stored_total(sessionmaker) == 1
    row = await stored_event(sessionmaker, first.json()["id"])
    assert row.raw_body == first_body and row.status == "queued"


# --- unhandled type ---------------------------------------------------------------------------


async def test_unhandled_event_type_is_stored_as_ignored(
    client: httpx.AsyncClient, sessionmaker: Any
) -> None:
    payload = {
        "type": "customer.updated",
        "timestamp": "2026-11-27T12:00:00Z",
        "data": {"customer": {"id": "c_1"}},
    }
    body, headers = wizehire_signed(payload, SECRET)

    response = await client.post(URL, content=body, headers=headers)

    assert response.status_code == 202, response.text
    assert response.json()["status"] == "ignored"
    row = await stored_event(sessionmaker, response.json()["id"])
    assert (row.status, row.type, row.ordering_key) == ("ignored", "customer.updated", None)
    assert row.raw_body == body and row.payload == payload
    assert row.handled_at is not None


# --- not JSON / not the schema: 422 and quarantined ---------------------------------------------

_ITEMS_OFF = order_event(amount="150.00")
_BAD_CURRENCY = order_event(currency="usd")
_NO_EMAIL = order_event()
del _NO_EMAIL["data"]["order"]["customer"]["email"]
_BAD_REFUND = samples.wizehire_event("refund.requested")
_BAD_REFUND["data"]["refund"]["reason_code"] = "because"


@pytest.mark.parametrize(
    ("body", "error_loc", "event_type"),
    [
        (json.dumps(_ITEMS_OFF).encode(), "data.order", "order.created"),
        (json.dumps(_BAD_CURRENCY).encode(), "data.order.currency", "order.created"),
        (json.dumps(_NO_EMAIL).encode(), "data.order.customer.email", "order.created"),
        (json.dumps(_BAD_REFUND).encode(), "data.refund.reason_code", "refund.requested"),
        (b'{"type": "order.created", "data": ', "body", "unknown"),
        (b'["order.created"]', "body", "unknown"),
        (b'{"data": {}}', "type", "unknown"),
        # Signed bytes that are not UTF-8: authentic, so stored, but not JSON.
        (b"\xff" + json.dumps(order_event()).encode(), "body", "unknown"),
    ],
    ids=[
        "items-off",
        "bad-currency",
        "no-email",
        "bad-reason",
        "truncated",
        "array",
        "no-type",
        "non-utf8",
    ],
)
async def test_event_not_matching_its_schema_answers_422_and_is_quarantined(
    client: httpx.AsyncClient, sessionmaker: Any, body: bytes, error_loc: str, event_type: str
) -> None:
    body, headers = wizehire_signed(body, SECRET)

    response = await client.post(URL, content=body, headers=headers)

    problem = assert_problem(response, 422)
    assert problem["errors"], problem
    assert all(set(error) == {"loc", "msg"} for error in problem["errors"])
    assert error_loc in [error["loc"] for error in problem["errors"]], problem["errors"]
    row = await stored_event(sessionmaker, problem["id"])
    assert (row.status, row.type) == ("quarantined", event_type)
    assert row.raw_body == body
    assert row.last_error and error_loc in row.last_error


async def test_items_not_adding_up_says_so(client: httpx.AsyncClient) -> None:
    body, headers = wizehire_signed(_ITEMS_OFF, SECRET)
    problem = assert_problem(await client.post(URL, content=body, headers=headers), 422)
    assert "149.00" in problem["errors"][0]["msg"] and "150.00" in problem["errors"][0]["msg"]


class _LenientOrderEvent(BaseModel):
    """Stands in for a schema fix shipped after the event arrived."""

    type: str
    timestamp: datetime
    data: dict[str, Any]

    @property
    def ordering_key(self) -> str:
        return f"wizehire:order:{self.data['order']['id']}"


async def test_quarantined_event_replays_only_once_its_body_parses(
    client: httpx.AsyncClient, sessionmaker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    body, headers = wizehire_signed(_ITEMS_OFF, SECRET)
    event_id = assert_problem(await client.post(URL, content=body, headers=headers), 422)["id"]

    refused = await client.post(f"/admin/events/{event_id}/replay")
    problem = assert_problem(refused, 409)
    assert "items add up" in problem["detail"]
    assert (await stored_event(sessionmaker, event_id)).status == "quarantined"

    monkeypatch.setitem(WIZEHIRE_EVENT_MODELS, "order.created", _LenientOrderEvent)
    replayed = await client.post(f"/admin/events/{event_id}/replay")
    assert replayed.status_code == 202, replayed.text
    row = await stored_event(sessionmaker, event_id)
    assert (row.status, row.ordering_key) == ("queued", "wizehire:order:wh_ord_1001")


# --- authentication: 401, nothing stored, never 500 -------------------------------------------


def _signed_then(change: str) -> tuple[bytes, dict[str, str]]:
    """A correctly signed request, then broken in one way."""
    body, headers = wizehire_signed(order_event(), SECRET)
    if change.startswith("drop:"):
        headers.pop(change[5:])
    elif change.startswith("signature="):
        headers["webhook-signature"] = change.split("=", 1)[1]
    elif change.startswith("timestamp="):
        headers["webhook-timestamp"] = change.split("=", 1)[1]
    elif change == "other-secret":
        body, headers = wizehire_signed(order_event(), new_whsec())
    elif change == "tampered-body":
        body = body.replace(b"149.00", b"14.90")
    elif change == "other-id":
        headers["webhook-id"] = "msg_someone_else"
    elif change == "unknown-version":
        headers["webhook-signature"] = "v2," + headers["webhook-signature"][3:]
    return body, headers


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("drop:webhook-signature", "missing_headers"),
        ("drop:webhook-id", "missing_headers"),
        ("drop:webhook-timestamp", "missing_headers"),
        ("signature=", "missing_headers"),
        ("other-secret", "bad_signature"),
        ("tampered-body", "bad_signature"),
        ("other-id", "bad_signature"),
        ("unknown-version", "bad_signature"),
        ("signature=v1", "malformed"),
        ("signature=abc", "malformed"),
        ("signature=v1,!!!", "bad_signature"),
        ("signature=v1,abc", "malformed"),
        ("signature=v1,a,b", "malformed"),
        ("signature=v1,YWJj  v1,YWJj", "malformed"),
        ("timestamp=yesterday", "bad_signature"),
        ("timestamp=nan", "bad_signature"),
        ("timestamp=1e300", "bad_signature"),
        ("timestamp=-1", "stale_timestamp"),
    ],
)
async def test_bad_signature_is_401_and_stores_nothing(
    client: httpx.AsyncClient, sessionmaker: Any, change: str, reason: str
) -> None:
    body, headers = _signed_then(change)
    before = await webhook_counts(client)

    response = await client.post(URL, content=body, headers=headers)

    assert_problem(response, 401)
    assert await stored_total(sessionmaker) == 0
    assert counts_delta(before, await webhook_counts(client)) == {
        ("wizehire", "rejected", reason): 1.0
    }


@pytest.mark.parametrize("offset", [-301 - 60, +301 + 60], ids=["stale", "future"])
async def test_timestamp_more_than_five_minutes_off_is_401(
    client: httpx.AsyncClient, sessionmaker: Any, offset: int
) -> None:
    body, headers = wizehire_signed(order_event(), SECRET, timestamp=time.time() + offset)
    before = await webhook_counts(client)

    problem = assert_problem(await client.post(URL, content=body, headers=headers), 401)

    assert "timestamp" in problem["detail"].lower()
    assert await stored_total(sessionmaker) == 0
    assert counts_delta(before, await webhook_counts(client)) == {
        ("wizehire", "rejected", "stale_timestamp"): 1.0
    }


async def test_timestamp_four_minutes_old_is_still_accepted(client: httpx.AsyncClient) -> None:
    body, headers = wizehire_signed(order_event(), SECRET, timestamp=time.time() - 240)
    assert (await client.post(URL, content=body, headers=headers)).status_code == 202


async def test_rotated_secrets_are_both_accepted_and_a_retired_one_is_not(
    client_factory: Any, database_url: str, engine: Any, sessionmaker: Any
) -> None:
    new, old, retired = new_whsec(), new_whsec(), new_whsec()
    client = await client_factory(
        make_settings(database_url, worker="off", wizehire_webhook_secret=f"{new} {old}")
    )

    for secret in (new, old):
        body, headers = wizehire_signed(order_event(), secret)
        response = await client.post(URL, content=body, headers=headers)
        assert response.status_code == 202, (secret == new, response.text)
    body, headers = wizehire_signed(order_event(), retired)
    assert_problem(await client.post(URL, content=body, headers=headers), 401)

    # Rotation finished: only the new secret is listed, and the old one stops working.
    after = await client_factory(
        make_settings(database_url, worker="off", wizehire_webhook_secret=new)
    )
    body, headers = wizehire_signed(order_event(), old)
    assert_problem(await after.post(URL, content=body, headers=headers), 401)
    assert await stored_total(sessionmaker) == 2


# --- metrics ------------------------------------------------------------------------------------


async def test_webhook_counter_counts_each_outcome_with_its_labels(
    client: httpx.AsyncClient,
) -> None:
    before = await webhook_counts(client)
    body, headers = wizehire_signed(order_event(), SECRET, event_id="msg_metrics")
    await client.post(URL, content=body, headers=headers)
    await client.post(URL, content=body, headers=headers)
    body, headers = wizehire_signed(order_event(), new_whsec())
    await client.post(URL, content=body, headers=headers)
    body, headers = wizehire_signed({"type": "customer.updated"}, SECRET)
    await client.post(URL, content=body, headers=headers)
    body, headers = wizehire_signed(_ITEMS_OFF, SECRET)
    await client.post(URL, content=body, headers=headers)
    await client.post(URL, content=b"{}", headers={"content-type": "text/plain"})

    assert counts_delta(before, await webhook_counts(client)) == {
        ("wizehire", "accepted", ""): 1.0,
        ("wizehire", "duplicate", ""): 1.0,
        ("wizehire", "ignored", ""): 1.0,
        ("wizehire", "quarantined", ""): 1.0,
        ("wizehire", "rejected", "bad_signature"): 1.0,
        ("wizehire", "rejected", "content_type"): 1.0,
    }


async def test_rejection_is_logged_with_its_reason_and_without_the_signature(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    body, headers = wizehire_signed(order_event(), new_whsec())

    with caplog.at_level("WARNING", logger="wizesync.inbox.webhooks"):
        assert_problem(await client.post(URL, content=body, headers=headers), 401)

    rejected = [r for r in caplog.records if r.getMessage() == "webhook rejected"]
    labels = [(getattr(r, "source", None), getattr(r, "reason", None)) for r in rejected]
    assert labels == [("wizehire", "bad_signature")]
    signature = headers["webhook-signature"].split(",", 1)[1]
    assert signature not in caplog.text and signature not in str(rejected[0].__dict__)
