"""The rows of the contract's webhook answer table that are the same for both senders: size (413),
media type (415), the database's outage (503), on both databases and for each sender.

What only one sender has (Standard Webhooks' ids and timestamps, GHL's Ed25519 and body
timestamp, their schemas) stays in `test_webhooks_wizehire.py` and `test_webhooks_ghl.py`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings
from tests.support.db_outage import PostgresOutage, SqliteOutage
from tests.support.webhook_kit import (
    MIB,
    Ed25519TestKey,
    assert_problem,
    counts_delta,
    ghl_signed,
    new_whsec,
    stored_total,
    webhook_counts,
    wizehire_signed,
)
from wizesync import samples

SECRET = new_whsec()
KEY = Ed25519TestKey.generate()


@dataclass(frozen=True)
class Sender:
    source: str
    url: str
    # A valid event; `tag` makes its delivery id unique, `pad` its padding (any length).
    event: Callable[[str, str], dict[str, Any]]
    sign: Callable[[Any], tuple[bytes, dict[str, str]]]
    settings: dict[str, Any]

    def signed(self, tag: str = "1", pad: str = "") -> tuple[bytes, dict[str, str]]:
        return self.sign(self.event(tag, pad))

    def sized(self, size: int) -> tuple[bytes, dict[str, str]]:
        """A valid event whose body is exactly `size` bytes, signed."""
        bare = len(json.dumps(self.event("sized", "")).encode())
        body = json.dumps(self.event("sized", "x" * (size - bare))).encode()
        assert len(body) == size
        return self.sign(body)


def _wizehire_event(tag: str, pad: str) -> dict[str, Any]:
    event = samples.wizehire_event("order.created", f"wh_ord_{tag}")
    event["data"]["order"]["metadata"] = {"pad": pad}
    return event


def _ghl_event(tag: str, pad: str) -> dict[str, Any]:
    event = samples.ghl_event("OrderCreate", "6578278e879ad2646715ba9c")
    event.update(webhookId=f"wh-{tag}", note=pad)
    return event


SENDERS = {
    "wizehire": Sender(
        "wizehire",
        "/webhooks/wizehire",
        _wizehire_event,
        lambda payload: wizehire_signed(payload, SECRET),
        {"wizehire_webhook_secret": SECRET},
    ),
    "ghl": Sender(
        "ghl",
        "/webhooks/ghl",
        _ghl_event,
        lambda payload: ghl_signed(payload, KEY),
        {"ghl_webhook_public_key": KEY.public_pem},
    ),
}


@pytest.fixture(params=list(SENDERS))
def sender(request: pytest.FixtureRequest) -> Sender:
    return SENDERS[request.param]


@pytest.fixture
async def client(
    client_factory: Any, database_url: str, engine: Any, sender: Sender
) -> httpx.AsyncClient:
    """No in-process worker: a stored row keeps the status the webhook gave it."""
    return await client_factory(make_settings(database_url, worker="off", **sender.settings))


# --- size and media type ----------------------------------------------------------------------


async def test_body_of_exactly_one_mib_is_accepted(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    body, headers = sender.sized(MIB)
    assert (await client.post(sender.url, content=body, headers=headers)).status_code == 202


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
async def test_body_over_one_mib_is_413_and_stores_nothing(
    client: httpx.AsyncClient, sessionmaker: Any, sender: Sender, streamed: bool
) -> None:
    body, headers = sender.sized(MIB + 1)
    before = await webhook_counts(client)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    content: Any = chunks() if streamed else body
    response = await client.post(sender.url, content=content, headers=headers)

    assert_problem(response, 413)
    assert ("content-length" in response.request.headers) is not streamed
    assert await stored_total(sessionmaker) == 0
    assert counts_delta(before, await webhook_counts(client)) == {
        (sender.source, "rejected", "too_large"): 1.0
    }


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "multipart/form-data",
    ],
)
async def test_content_type_not_json_is_415_and_stores_nothing(
    client: httpx.AsyncClient, sessionmaker: Any, sender: Sender, content_type: str | None
) -> None:
    body, headers = sender.signed()
    del headers["content-type"]
    if content_type:
        headers["content-type"] = content_type

    assert_problem(await client.post(sender.url, content=body, headers=headers), 415)
    assert await stored_total(sessionmaker) == 0


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/x+json"])
async def test_json_content_types_are_accepted(
    client: httpx.AsyncClient, sender: Sender, content_type: str
) -> None:
    body, headers = sender.signed()
    headers["content-type"] = content_type
    assert (await client.post(sender.url, content=body, headers=headers)).status_code == 202


# --- database unavailable -----------------------------------------------------------------------


async def test_database_unavailable_is_503_with_retry_after_then_recovers(
    client_factory: Any,
    database_url: str,
    is_postgres: bool,
    tmp_path: Path,
    sessionmaker: Any,
    sender: Sender,
) -> None:
    outage: PostgresOutage | SqliteOutage
    if is_postgres:
        outage = PostgresOutage(database_url)
        await outage.start_up()
    else:
        outage = SqliteOutage(tmp_path)
    try:
        # The in-process worker runs too: it must survive the outage, not crash the app.
        client = await client_factory(make_settings(outage.url, **sender.settings))
        if is_postgres:
            body, headers = sender.signed("before")
            assert (await client.post(sender.url, content=body, headers=headers)).status_code == 202
            await outage.down()

        body, headers = sender.signed("during_outage")
        response = await client.post(sender.url, content=body, headers=headers)

        assert_problem(response, 503)
        assert int(response.headers["retry-after"]) > 0
        assert (await client.get("/health")).status_code == 200

        # The sender retries the same event once the database is back: it is new, not a dup.
        await outage.up()
        retried = await client.post(sender.url, content=body, headers=headers)
        assert retried.status_code == 202, retried.text
        assert retried.json()["status"] == "queued"
        if is_postgres:
            assert await stored_total(sessionmaker) == 2
    finally:
        await outage.close()
