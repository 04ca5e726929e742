"""Authentic webhooks are always stored and never answered 5xx, whatever their body holds.

Bodies PostgreSQL's JSONB or text refuse (NaN, Infinity, 1e400, NUL, lone surrogates), ids and
ordering keys longer than their columns, JSON nested deeper than any parser recurses: each is
signed correctly, so the service keeps the raw bytes, quarantines the event with the reason
(Wizehire: 422, GHL: 202 quarantined) and answers without a 5xx, on both databases. A property
test then sends arbitrary signed JSON and arbitrary signed bytes through both routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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

SECRET = new_whsec()
KEY = Ed25519TestKey.generate()
WIZEHIRE, GHL = "/webhooks/wizehire", "/webhooks/ghl"


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


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _wizehire_order_text(**raw_values: str) -> bytes:
    """A sample order.created whose named order fields are replaced by raw JSON text."""
    event = samples.wizehire_event("order.created", "wh_ord_hostile")
    marks = {}
    for name in raw_values:
        marks[name] = f"@@{name}@@"
        event["data"]["order"][name] = marks[name]
    text = json.dumps(event)
    for name, raw in raw_values.items():
        text = text.replace(json.dumps(marks[name]), raw)
    return text.encode()


def _ghl_order_text(**raw_values: str) -> bytes:
    event = samples.ghl_event("OrderCreate", "6578278e879ad2646715ba9c")
    marks = {}
    for name in raw_values:
        marks[name] = f"@@{name}@@"
        event[name] = marks[name]
    text = json.dumps(event)
    for name, raw in raw_values.items():
        text = text.replace(json.dumps(marks[name]), raw)
    return text.encode()


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


# Raw JSON text for one field of an otherwise valid event.
HOSTILE_VALUES = {
    "nan": "NaN",
    "infinity": "Infinity",
    "minus-infinity": "-Infinity",
    "overflow": "1e400",
    "nul": '"a\\u0000b"',
    "lone-surrogate": '"\\ud800"',
    "lone-low-surrogate": '"x\\udfff"',
    "deep-1000": _deep(1000),
    "deep-201": _deep(201),
}


@pytest.mark.parametrize("value", HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
async def test_wizehire_body_the_database_cannot_hold_is_stored_quarantined_and_422(
    client: httpx.AsyncClient, sessionmaker: Any, value: str
) -> None:
    body, headers = wizehire_signed(_wizehire_order_text(metadata=value), SECRET)

    response = await client.post(WIZEHIRE, content=body, headers=headers)

    problem = assert_problem(response, 422)
    assert problem["errors"], problem
    row = await stored_event(sessionmaker, problem["id"])
    assert row.status == "quarantined"
    assert row.raw_body == body
    assert row.last_error
    # A redelivery is the same event, not a second row.
    _, again = wizehire_signed(body, SECRET, event_id=headers["webhook-id"])
    assert (await client.post(WIZEHIRE, content=body, headers=again)).status_code == 200
    assert await stored_total(sessionmaker) == 1


@pytest.mark.parametrize("value", HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
async def test_ghl_body_the_database_cannot_hold_is_stored_and_202_quarantined(
    client: httpx.AsyncClient, sessionmaker: Any, value: str
) -> None:
    body, headers = ghl_signed(_ghl_order_text(amount=value), KEY)

    response = await client.post(GHL, content=body, headers=headers)

    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer == {"id": answer["id"], "status": "quarantined"}
    row = await stored_event(sessionmaker, answer["id"])
    assert row.status == "quarantined" and row.raw_body == body and row.last_error
    assert (await client.post(GHL, content=body, headers=headers)).status_code == 200
    assert await stored_total(sessionmaker) == 1


async def test_whole_body_nested_1000_deep_is_stored_on_both_routes(
    client: httpx.AsyncClient, sessionmaker: Any
) -> None:
    deep = ('{"type": "order.created", "data": ' + _deep(1000) + "}").encode()
    body, headers = wizehire_signed(deep, SECRET)
    problem = assert_problem(await client.post(WIZEHIRE, content=body, headers=headers), 422)
    assert (await stored_event(sessionmaker, problem["id"])).raw_body == deep

    body, headers = ghl_signed(_deep(1000).encode(), KEY)
    response = await client.post(GHL, content=body, headers=headers)
    assert response.status_code == 202 and response.json()["status"] == "quarantined"
    assert await stored_total(sessionmaker) == 2


async def test_order_id_of_250_characters_is_queued_under_a_bounded_ordering_key(
    client: httpx.AsyncClient, sessionmaker: Any
) -> None:
    """The key `wizehire:order:<id>` outgrows VARCHAR(255); it is shortened the same way for
    every event of the order, so the order's events still line up."""
    order_id = "o" * 250
    rows = []
    for event_type in ("order.created", "order.updated"):
        body, headers = wizehire_signed(samples.wizehire_event(event_type, order_id), SECRET)
        response = await client.post(WIZEHIRE, content=body, headers=headers)
        assert response.status_code == 202, response.text
        rows.append(await stored_event(sessionmaker, response.json()["id"]))
    other = samples.wizehire_event("order.created", "o" * 249 + "p")
    body, headers = wizehire_signed(other, SECRET)
    response = await client.post(WIZEHIRE, content=body, headers=headers)
    rows.append(await stored_event(sessionmaker, response.json()["id"]))

    keys = [row.ordering_key for row in rows]
    assert all(len(key) <= 255 for key in keys)
    assert keys[0] == keys[1] != keys[2]
    assert keys[0].startswith("wizehire:order:ooo")
    assert rows[0].payload["data"]["order"]["id"] == order_id


async def test_ids_longer_than_their_column_stay_distinct_events(
    client: httpx.AsyncClient, sessionmaker: Any
) -> None:
    long_a, long_b = "m" * 300 + "a", "m" * 300 + "b"
    ids = []
    for webhook_id in (long_a, long_b):
        body, headers = wizehire_signed(
            samples.wizehire_event("order.created"), SECRET, event_id=webhook_id
        )
        response = await client.post(WIZEHIRE, content=body, headers=headers)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    for webhook_id in (long_a, long_b):
        event = samples.ghl_event("OrderCreate")
        event["webhookId"] = webhook_id
        body, headers = ghl_signed(event, KEY)
        response = await client.post(GHL, content=body, headers=headers)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    rows = [await stored_event(sessionmaker, i) for i in ids]
    assert len({(row.source, row.event_id) for row in rows}) == 4
    assert all(len(row.event_id) <= 255 for row in rows)


async def test_body_nested_just_within_the_parser_limit_is_stored_as_sent(
    client: httpx.AsyncClient, sessionmaker: Any
) -> None:
    payload = {"type": "SomethingNew", "timestamp": _now(), "deep": json.loads(_deep(198))}
    body, headers = ghl_signed(payload, KEY)
    response = await client.post(GHL, content=body, headers=headers)
    assert response.status_code == 202 and response.json()["status"] == "ignored"
    assert (await stored_event(sessionmaker, response.json()["id"])).payload == payload


# --- money and identity: 422 naming the field, not queued --------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {
                "amount": '"0.00"',
                "items": '[{"sku": "A", "name": "a", "quantity": 1, "unit_amount": "0.00"}]',
            },
            "data.order.amount",
        ),
        (
            {
                "amount": "0",
                "items": '[{"sku": "A", "name": "a", "quantity": 1, "unit_amount": 0}]',
            },
            "data.order.amount",
        ),
        (
            {
                "items": '[{"sku": "A", "name": "a", "quantity": 1, "unit_amount": "149.00"}, '
                '{"sku": "B", "name": "b", "quantity": 99999999999999999999999, '
                '"unit_amount": "0"}]'
            },
            "data.order.items.1.quantity",
        ),
        ({"currency": '"ZZZ"'}, "data.order.currency"),
        ({"currency": '"XTS"'}, "data.order.currency"),
        ({"amount": "149.000000000000000000000000000001"}, "data.order.amount"),
        (
            {
                "items": '[{"sku": "A", "name": "a", "quantity": 1, '
                '"unit_amount": 149.000000000000000000000000000001}]'
            },
            "data.order.items.0.unit_amount",
        ),
    ],
    ids=[
        "zero-amount",
        "zero-number",
        "quantity-overflow",
        "currency-zzz",
        "currency-xts",
        "inexact-amount",
        "inexact-unit-amount",
    ],
)
async def test_money_and_identity_checks_answer_422_naming_the_field(
    client: httpx.AsyncClient, sessionmaker: Any, changes: dict[str, str], field: str
) -> None:
    body, headers = wizehire_signed(_wizehire_order_text(**changes), SECRET)

    problem = assert_problem(await client.post(WIZEHIRE, content=body, headers=headers), 422)

    assert field in [error["loc"] for error in problem["errors"]], problem["errors"]
    row = await stored_event(sessionmaker, problem["id"])
    assert row.status == "quarantined" and field in (row.last_error or "")


async def test_zero_refund_and_unknown_refund_currency_are_422(client: httpx.AsyncClient) -> None:
    for change, field in (
        (("amount", "0.00"), "data.refund.amount"),
        (("currency", "ZZZ"), "data.refund.currency"),
    ):
        event = samples.wizehire_event("refund.requested")
        event["data"]["refund"][change[0]] = change[1]
        body, headers = wizehire_signed(event, SECRET)
        problem = assert_problem(await client.post(WIZEHIRE, content=body, headers=headers), 422)
        assert field in [error["loc"] for error in problem["errors"]]


async def test_exact_json_number_amounts_and_real_currencies_are_queued(
    client: httpx.AsyncClient,
) -> None:
    for currency in ("USD", "EUR", "JPY", "XCG"):
        body, headers = wizehire_signed(
            _wizehire_order_text(
                amount="149.10",
                currency=json.dumps(currency),
                items='[{"sku": "A", "name": "a", "quantity": 3, "unit_amount": 49.7}]',
            ),
            SECRET,
        )
        response = await client.post(WIZEHIRE, content=body, headers=headers)
        assert response.status_code == 202, response.text


# --- property: never a 5xx, always stored once -------------------------------------------------

_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(codec=None, exclude_categories=()), max_size=20)
)
_JSON = st.recursive(
    _LEAVES,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _json_text(value: Any) -> bytes:
    # allow_nan: NaN and Infinity on the wire; ensure_ascii: surrogates as `\udXXX` escapes.
    return json.dumps(value, allow_nan=True).encode()


@st.composite
def _bodies(draw: st.DrawFn, source: str) -> bytes:
    kind = draw(st.sampled_from(["json", "bytes", "event-leaf"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        value = draw(_JSON)
        if isinstance(value, dict) and source == "ghl":
            value["timestamp"] = _now()
        return _json_text(value)
    # A handled event with one field replaced by arbitrary JSON: the models see odd values.
    if source == "wizehire":
        event = samples.wizehire_event(draw(st.sampled_from(["order.created", "refund.requested"])))
        inner = event["data"].get("order") or event["data"]["refund"]
    else:
        event = inner = samples.ghl_event(
            draw(st.sampled_from(["OrderCreate", "InvoicePaid", "UNINSTALL"]))
        )
    name = draw(st.sampled_from(sorted(k for k in inner if k not in ("timestamp",))))
    inner[name] = draw(_JSON)
    return _json_text(event)


async def _post_twice(
    client: httpx.AsyncClient, sessionmaker: Any, source: str, body: bytes
) -> None:
    before = await stored_total(sessionmaker)
    if source == "wizehire":
        event_id = f"msg_{uuid.uuid4().hex}"
        signed, headers = wizehire_signed(body, SECRET, event_id=event_id)
        first = await client.post(WIZEHIRE, content=signed, headers=headers)
        _, headers_again = wizehire_signed(
            body, SECRET, event_id=event_id, timestamp=time.time() - 1
        )
        again = await client.post(WIZEHIRE, content=signed, headers=headers_again)
    else:
        signed, headers = ghl_signed(body, KEY)
        first = await client.post(GHL, content=signed, headers=headers)
        again = await client.post(GHL, content=signed, headers=headers)
    assert first.status_code < 500 and again.status_code < 500, (first.text, body)
    assert first.status_code in (200, 202, 422), (first.text, body)
    assert again.status_code == 200 and again.json()["status"] == "duplicate", again.text
    answer = first.json()
    row = await stored_event(sessionmaker, answer["id"])
    assert row.raw_body == body
    expected = before + (0 if first.status_code == 200 else 1)
    assert await stored_total(sessionmaker) == expected


class _AppInALoop:
    """The app and a client on an event loop of their own, in a thread: hypothesis runs (and
    shrinks) a synchronous test, which hands each example's requests to that loop."""

    def __init__(self, app_settings: Settings) -> None:
        self._settings = app_settings
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stack = contextlib.AsyncExitStack()

    def __enter__(self) -> _AppInALoop:
        self._thread.start()
        self.run(self._start())
        return self

    def __exit__(self, *_: object) -> None:
        self.run(self._stack.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        from wizesync.app import create_app

        app = create_app(self._settings)
        await self._stack.enter_async_context(app.router.lifespan_context(app))
        self.sessionmaker = app.state.wizesync.sessionmaker
        self.client = await self._stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        )

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)


@pytest.mark.parametrize("source", ["wizehire", "ghl"])
def test_property_signed_arbitrary_bodies_never_5xx_and_are_stored_once(
    quiet_settings: Settings, source: str
) -> None:
    with _AppInALoop(quiet_settings) as app:

        @settings(
            max_examples=60,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(_bodies(source))
        def never_5xx_and_stored_once(body: bytes) -> None:
            app.run(_post_twice(app.client, app.sessionmaker, source, body))

        never_5xx_and_stored_once()
