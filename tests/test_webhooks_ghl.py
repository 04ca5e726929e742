"""`POST /webhooks/ghl`: every row of the contract's webhook answer table, on both databases.

GHL's own private key is nobody's to use, so the tests generate an Ed25519 key and configure its
public half as `GHL_WEBHOOK_PUBLIC_KEY`, as an operator would for a sandbox.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict

from tests.conftest import make_settings
from tests.support.signing import ghl_request
from tests.support.webhook_kit import (
    Ed25519TestKey,
    RsaTestKey,
    assert_problem,
    counts_delta,
    ghl_rsa_signed,
    ghl_signed,
    new_whsec,
    stored_event,
    stored_total,
    webhook_counts,
)
from wizesync import samples
from wizesync.config import Settings
from wizesync.ghl.webhook_events import GHL_EVENT_MODELS

KEY = Ed25519TestKey.generate()
URL = "/webhooks/ghl"
ORDER_ID = "6578278e879ad2646715ba9c"


@pytest.fixture
def quiet_settings(database_url: str, engine: Any) -> Settings:
    """No in-process worker: a stored row keeps the status the webhook gave it."""
    return make_settings(database_url, worker="off", ghl_webhook_public_key=KEY.public_pem)


@pytest.fixture
async def client(client_factory: Any, quiet_settings: Settings) -> httpx.AsyncClient:
    return await client_factory(quiet_settings)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def order_create(**changes: Any) -> dict[str, Any]:
    event = samples.ghl_event("OrderCreate", ORDER_ID)
    event.update(changes)
    return event


# --- valid, new -------------------------------------------------------------------------------


def _expected_key(event: dict[str, Any]) -> str:
    if event["type"].startswith("Order"):
        return f"ghl:order:{event['_id']}"
    if event["type"].startswith("Invoice"):
        return f"ghl:invoice:{event['_id']}"
    return f"ghl:install:{event['locationId']}"


@pytest.mark.parametrize("event_type", samples.GHL_TYPES)
async def test_new_event_is_queued_with_raw_body_payload_type_and_order_key(
    client: httpx.AsyncClient, sessionmaker: Any, event_type: str
) -> None:
    payload = samples.ghl_event(event_type, ORDER_ID)
    raw = json.dumps(payload, indent=1).encode()
    body, headers = ghl_signed(raw, KEY)

    response = await client.post(URL, content=body, headers=headers)

    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer == {"id": answer["id"], "status": "queued"}
    row = await stored_event(sessionmaker, answer["id"])
    assert (row.source, row.event_id, row.type) == ("ghl", payload["webhookId"], event_type)
    assert row.status == "queued"
    assert row.ordering_key == _expected_key(payload)
    assert row.ordering_key.endswith(ORDER_ID) or event_type in ("INSTALL", "UNINSTALL")
    assert row.raw_body == raw
    assert row.payload == payload


async def test_docs_example_without_timestamp_or_webhook_id_is_queued(
    client: httpx.AsyncClient, sessionmaker: Any
) -> None:
    """GHL's documented examples carry neither `timestamp` nor `webhookId`."""
    payload = order_create()
    del payload["timestamp"], payload["webhookId"]
    body, headers = ghl_signed(payload, KEY)

    response = await client.post(URL, content=body, headers=headers)

    assert response.status_code == 202, response.text
    row = await stored_event(sessionmaker, response.json()["id"])
    assert row.event_id == "sha256:" + hashlib.sha256(body).hexdigest()
    assert row.ordering_key == f"ghl:order:{ORDER_ID}"


# --- duplicates -------------------------------------------------------------------------------


async def test_same_webhook_id_and_body_again_is_duplicate(
    client: httpx.AsyncClient, sessionmaker: Any
) -> None:
    first_body, headers = ghl_signed(order_create(webhookId="wh-evt-1"), KEY)
    first = await client.post(URL, content=first_body, headers=headers)
    assert first.status_code == 202, first.text

    # Another body under the id is a 409 (tests/test_webhook_conflicts.py).
    body, headers = ghl_signed(first_body, KEY)
    again = await client.post(URL, content=body, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json() == {"id": first.json()["id"], "status": "duplicate"}

    assert await stored_total(sessionmaker) == 1
    assert (await stored_event(sessionmaker, first.json()["id"])).raw_body == first_body


async def test_without_webhook_id_the_raw_body_hash_dedupes(
    client: httpx.AsyncClient, sessionmaker: Any
) -> None:
    payload = order_create()
    del payload["webhookId"]
    body, headers = ghl_signed(payload, KEY)
    first = await client.post(URL, content=body, headers=headers)
    again = await client.post(URL, content=body, headers=headers)

    assert first.status_code == 202 and again.status_code == 200, (first.text, again.text)
    assert again.json() == {"id": first.json()["id"], "status": "duplicate"}
    row = await stored_event(sessionmaker, first.json()["id"])
    assert row.event_id == "sha256:" + hashlib.sha256(body).hexdigest()

    # One byte more (same JSON, other bytes) is another body, so another event.
    spaced = body + b" "
    _, spaced_headers = ghl_signed(spaced, KEY)
    other = await client.post(URL, content=spaced, headers=spaced_headers)
    assert other.status_code == 202 and other.json()["id"] != first.json()["id"]
    assert await stored_total(sessionmaker) == 2


# --- unhandled type ---------------------------------------------------------------------------


async def test_unhandled_event_type_is_stored_as_ignored(
    client: httpx.AsyncClient, sessionmaker: Any
) -> None:
    payload = {
        "type": "ContactCreate",
        "timestamp": iso(datetime.now(UTC)),
        "webhookId": "wh-contact-1",
        "id": "nmFmQEsNgz6AVpgLVUJ0",
        "locationId": "ve9EPM428h8vShlRW1KT",
        "email": "pat@example.com",
    }
    body, headers = ghl_signed(payload, KEY)

    response = await client.post(URL, content=body, headers=headers)

    assert response.status_code == 202, response.text
    assert response.json()["status"] == "ignored"
    row = await stored_event(sessionmaker, response.json()["id"])
    assert (row.status, row.type, row.event_id) == ("ignored", "ContactCreate", "wh-contact-1")
    assert row.raw_body == body and row.handled_at is not None


# --- not JSON / not the schema: 202 quarantined (GHL would only retry a 4xx) -------------------


def _no_id() -> bytes:
    event = order_create()
    del event["_id"]
    return json.dumps(event).encode()


# Bodies are built when the test runs, not at collection: their `timestamp` must be fresh (a long
# suite would otherwise run them more than 5 minutes after collection, and get a 401).
@pytest.mark.parametrize(
    ("make_body", "event_type", "error_loc"),
    [
        (_no_id, "OrderCreate", "_id"),
        (lambda: json.dumps(order_create(_id=12345)).encode(), "OrderCreate", "_id"),
        (lambda: json.dumps(order_create(_id="x" * 65)).encode(), "OrderCreate", "_id"),
        (lambda: b'{"type": "OrderCreate", "_id": ', "unknown", "body"),
        (lambda: b"\xff\xfe binary", "unknown", "body"),
        (lambda: b"[1, 2, 3]", "unknown", "body"),
        (lambda: b'{"_id": "abc"}', "unknown", "type"),
    ],
    ids=["no-id", "numeric-id", "long-id", "truncated", "not-utf8", "array", "no-type"],
)
async def test_event_not_matching_its_schema_is_202_quarantined_and_stored(
    client: httpx.AsyncClient,
    sessionmaker: Any,
    make_body: Callable[[], bytes],
    event_type: str,
    error_loc: str,
) -> None:
    body, headers = ghl_signed(make_body(), KEY)

    response = await client.post(URL, content=body, headers=headers)

    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer == {"id": answer["id"], "status": "quarantined"}
    row = await stored_event(sessionmaker, answer["id"])
    assert (row.status, row.type) == ("quarantined", event_type)
    assert row.raw_body == body
    assert row.last_error and row.last_error.startswith(error_loc)


class _LenientOrderEvent(BaseModel):
    """Stands in for a schema fix shipped after the event arrived."""

    model_config = ConfigDict(extra="allow")
    type: str

    @property
    def ordering_key(self) -> str:
        return "ghl:order:unknown"


async def test_quarantined_event_replays_only_once_its_body_parses(
    client: httpx.AsyncClient, sessionmaker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    body, headers = ghl_signed(_no_id(), KEY)
    event_id = (await client.post(URL, content=body, headers=headers)).json()["id"]

    problem = assert_problem(await client.post(f"/admin/events/{event_id}/replay"), 409)
    assert "_id" in problem["detail"]
    assert (await stored_event(sessionmaker, event_id)).status == "quarantined"

    monkeypatch.setitem(GHL_EVENT_MODELS, "OrderCreate", _LenientOrderEvent)
    replayed = await client.post(f"/admin/events/{event_id}/replay")
    assert replayed.status_code == 202, replayed.text
    row = await stored_event(sessionmaker, event_id)
    assert (row.status, row.ordering_key) == ("queued", "ghl:order:unknown")


# --- authentication: 401, nothing stored, never 500 -------------------------------------------

OTHER_KEY = Ed25519TestKey.generate()


def _signed_then(change: str) -> tuple[bytes, dict[str, str]]:
    """A correctly signed request, then broken in one way."""
    body, headers = ghl_signed(order_create(), KEY)
    if change == "no-header":
        del headers["x-ghl-signature"]
    elif change.startswith("signature="):
        headers["x-ghl-signature"] = change.split("=", 1)[1]
    elif change == "other-key":
        body, headers = ghl_signed(order_create(), OTHER_KEY)
    elif change == "tampered-body":
        body = body.replace(b"149.0", b"1.0")
    elif change == "non-utf8-body":
        body = b"\xff" + body  # signed bytes changed: GHL signs bytes, so it no longer verifies
    elif change == "short-signature":
        headers["x-ghl-signature"] = base64.b64encode(b"short").decode()
    elif change == "legacy-rsa-unconfigured":
        body, headers = ghl_rsa_signed(order_create(), RsaTestKey.generate())
    elif change == "both-na":
        headers["x-ghl-signature"] = "N/A"
        headers["x-wh-signature"] = "N/A"
    return body, headers


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("no-header", "missing_headers"),
        ("signature=", "missing_headers"),
        ("signature=N/A", "missing_headers"),
        ("signature=n/a", "missing_headers"),
        ("both-na", "missing_headers"),
        ("other-key", "bad_signature"),
        ("tampered-body", "bad_signature"),
        ("short-signature", "bad_signature"),
        ("non-utf8-body", "bad_signature"),
        ("signature=not base64!!", "malformed"),
        ("signature=abc", "malformed"),
        ("signature=v1,abc", "malformed"),
        ("legacy-rsa-unconfigured", "legacy_not_accepted"),
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
    assert counts_delta(before, await webhook_counts(client)) == {("ghl", "rejected", reason): 1.0}


@pytest.mark.parametrize("offset_minutes", [-6, +6, -60 * 24], ids=["stale", "future", "a-day"])
@pytest.mark.parametrize(
    "event_type", ["OrderCreate", "ContactCreate"], ids=["handled", "unhandled"]
)
async def test_body_timestamp_more_than_five_minutes_off_is_401(
    client: httpx.AsyncClient, sessionmaker: Any, offset_minutes: int, event_type: str
) -> None:
    stamp = iso(datetime.now(UTC) + timedelta(minutes=offset_minutes))
    body, headers = ghl_signed(order_create(type=event_type, timestamp=stamp), KEY)
    before = await webhook_counts(client)

    problem = assert_problem(await client.post(URL, content=body, headers=headers), 401)

    assert "timestamp" in problem["detail"]
    assert await stored_total(sessionmaker) == 0
    assert counts_delta(before, await webhook_counts(client)) == {
        ("ghl", "rejected", "stale_timestamp"): 1.0
    }


async def test_body_timestamp_four_minutes_old_is_accepted(client: httpx.AsyncClient) -> None:
    stamp = iso(datetime.now(UTC) - timedelta(minutes=4))
    body, headers = ghl_signed(order_create(timestamp=stamp), KEY)
    assert (await client.post(URL, content=body, headers=headers)).status_code == 202


# --- which keys are trusted -------------------------------------------------------------------


async def test_configured_key_may_be_a_path_to_a_pem_file(
    client_factory: Any, database_url: str, engine: Any, tmp_path: Path
) -> None:
    pem_file = tmp_path / "ghl.pem"
    pem_file.write_text(KEY.public_pem)
    client = await client_factory(
        make_settings(database_url, worker="off", ghl_webhook_public_key=str(pem_file))
    )

    body, headers = ghl_signed(order_create(), KEY)
    assert (await client.post(URL, content=body, headers=headers)).status_code == 202
    body, headers = ghl_signed(order_create(), OTHER_KEY)
    assert_problem(await client.post(URL, content=body, headers=headers), 401)


async def test_the_sandbox_key_is_trusted_only_when_configured_outright(
    client: httpx.AsyncClient, client_factory: Any, database_url: str
) -> None:
    """Only the in-process development sandbox makes the service trust its key by itself
    (tests/test_fail_closed.py); anywhere else an operator must configure it."""
    body, headers = ghl_request(order_create())  # signed with the sandbox's key
    assert_problem(await client.post(URL, content=body, headers=headers), 401)
    body, headers = ghl_signed(order_create(), KEY)
    assert (await client.post(URL, content=body, headers=headers)).status_code == 202

    sandbox_client = await client_factory(make_settings(database_url, worker="off"))
    body, headers = ghl_request(order_create())
    assert (await sandbox_client.post(URL, content=body, headers=headers)).status_code == 202


def production_settings(database_url: str, **overrides: Any) -> Settings:
    return make_settings(
        database_url,
        wizesync_env="production",
        worker="off",
        admin_token="prod-admin-token-7f3a9c-0123456789abcdef",
        wizehire_webhook_secret=new_whsec(),
        wizehire_api_url="https://api.wizehire.example",
        ghl_webhook_public_key=KEY.public_pem,
        allow_sqlite_in_production=True,
        **overrides,
    )


async def test_production_does_not_trust_the_sandbox_key(
    client_factory: Any, database_url: str, engine: Any, sessionmaker: Any
) -> None:
    settings = production_settings(database_url)
    client = await client_factory(settings)

    body, headers = ghl_request(order_create())  # the sandbox key: public, anyone can sign
    assert_problem(await client.post(URL, content=body, headers=headers), 401)
    assert await stored_total(sessionmaker) == 0

    body, headers = ghl_signed(order_create(), KEY)
    assert (await client.post(URL, content=body, headers=headers)).status_code == 202


async def test_legacy_rsa_signature_is_accepted_only_when_its_key_is_configured(
    client_factory: Any, database_url: str, engine: Any, sessionmaker: Any
) -> None:
    rsa_key, other_rsa = RsaTestKey.generate(), RsaTestKey.generate()
    with_rsa = await client_factory(
        production_settings(database_url, ghl_webhook_rsa_public_key=rsa_key.public_pem)
    )
    without_rsa = await client_factory(production_settings(database_url))

    body, headers = ghl_rsa_signed(order_create(), rsa_key)
    accepted = await with_rsa.post(URL, content=body, headers=headers)
    assert accepted.status_code == 202, accepted.text
    body, headers = ghl_rsa_signed(order_create(), rsa_key)
    headers["x-ghl-signature"] = "N/A"  # GHL's way of saying "no Ed25519 signature"
    assert (await with_rsa.post(URL, content=body, headers=headers)).status_code == 202

    body, headers = ghl_rsa_signed(order_create(), other_rsa)
    assert_problem(await with_rsa.post(URL, content=body, headers=headers), 401)
    body, headers = ghl_rsa_signed(order_create(), rsa_key)
    problem = assert_problem(await without_rsa.post(URL, content=body, headers=headers), 401)
    assert "X-WH-Signature" in problem["detail"]
    assert await stored_total(sessionmaker) == 2


# --- metrics ------------------------------------------------------------------------------------


async def test_webhook_counter_counts_each_outcome_with_its_labels(
    client: httpx.AsyncClient,
) -> None:
    before = await webhook_counts(client)
    body, headers = ghl_signed(order_create(webhookId="wh-metrics"), KEY)
    await client.post(URL, content=body, headers=headers)
    await client.post(URL, content=body, headers=headers)
    body, headers = ghl_signed(order_create(), OTHER_KEY)
    await client.post(URL, content=body, headers=headers)
    body, headers = ghl_signed({"type": "ContactCreate", "id": "c1"}, KEY)
    await client.post(URL, content=body, headers=headers)
    body, headers = ghl_signed(_no_id(), KEY)
    await client.post(URL, content=body, headers=headers)
    body, headers = ghl_signed(order_create(), KEY)
    headers.pop("x-ghl-signature")
    await client.post(URL, content=body, headers=headers)

    assert counts_delta(before, await webhook_counts(client)) == {
        ("ghl", "accepted", ""): 1.0,
        ("ghl", "duplicate", ""): 1.0,
        ("ghl", "ignored", ""): 1.0,
        ("ghl", "quarantined", ""): 1.0,
        ("ghl", "rejected", "bad_signature"): 1.0,
        ("ghl", "rejected", "missing_headers"): 1.0,
    }
