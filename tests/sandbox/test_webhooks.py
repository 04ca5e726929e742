"""Webhooks the sandbox sends: GHL events signed so that wizesync's own GhlVerifier accepts them,
Wizehire events that pass WizehireVerifier, shaped like the docs' examples, delivered, retried,
held and released on demand; and, end to end, accepted by the real service on both databases."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.sandbox.kit import LOC, checkout, create_invoice, pay_invoice, upsert_contact
from wizesync.config import DEV_WIZEHIRE_SECRET
from wizesync.devmode import SANDBOX_GHL_PUBLIC_KEY_PEM
from wizesync.inbox.signatures import GhlVerifier, SignatureError, WizehireVerifier
from wizesync_sandbox.core import Sandbox
from wizesync_sandbox.server import create_sandbox_app
from wizesync_sandbox.settings import SandboxConfig


class Receiver:
    """A stand-in service that records what reaches it and answers with `status`."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes, dict[str, str]]] = []
        self.status = 202
        self.app = FastAPI()

        @self.app.post("/webhooks/{source}")
        async def receive(source: str, request: Request) -> JSONResponse:
            self.requests.append((source, await request.body(), dict(request.headers)))
            return JSONResponse({"status": "queued"}, status_code=self.status)


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
async def wired(receiver: Receiver) -> AsyncIterator[tuple[Sandbox, httpx.AsyncClient]]:
    """A sandbox whose webhooks go to the receiver, delivered as state changes."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver.app))
    sandbox = Sandbox.build(
        SandboxConfig(service_url="http://service", webhooks="send", webhook_max_attempts=1),
        http=http,
    )
    app = create_sandbox_app(sandbox=sandbox, seed=True)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox"
    ) as client:
        yield sandbox, client
    await http.aclose()


def _ghl_verifier() -> GhlVerifier:
    return GhlVerifier([SANDBOX_GHL_PUBLIC_KEY_PEM])


async def test_state_changes_send_ghl_webhooks_that_wizesyncs_verifier_accepts(wired, receiver):
    sandbox, client = wired
    contact = await upsert_contact(client)
    invoice = await create_invoice(client, contact)
    await pay_invoice(client, invoice["_id"])
    await sandbox.outbox.drain()

    sent = [(json.loads(body), headers) for source, body, headers in receiver.requests]
    assert [b["type"] for b, _ in sent] == [
        "InvoiceCreate",
        "InvoicePaid",
        "OrderCreate",
        "OrderStatusUpdate",
    ]
    verifier = _ghl_verifier()
    for (source, body, headers), (payload, _) in zip(receiver.requests, sent, strict=True):
        assert source == "ghl"
        assert headers["content-type"] == "application/json"
        assert verifier.verify(body, headers) == "ed25519"
        assert len(payload["webhookId"]) == 24
        assert payload["timestamp"].endswith("Z")
    order_event = sent[2][0]
    assert order_event["source"] == {
        "type": "invoice",
        "id": invoice["_id"],
        "name": invoice["name"],
    }
    assert order_event["status"] == "pending"  # the snapshot when it was created
    assert sent[3][0]["status"] == "completed"
    assert sent[1][0]["invoiceNumber"] == str(invoice["invoiceNumber"])
    assert all(d.status == "delivered" for d in sandbox.outbox.deliveries.values())


async def test_a_tampered_sandbox_webhook_is_rejected_by_the_verifier(wired, receiver):
    sandbox, client = wired
    await checkout(client)
    await sandbox.outbox.drain()
    _, body, headers = receiver.requests[0]
    with pytest.raises(SignatureError):
        _ghl_verifier().verify(body.replace(b'"pending"', b'"completed"'), headers)


async def test_order_webhook_has_every_field_of_the_docs_example(wired, receiver):
    from tests.support.ghl_spec import require_spec_dir

    example = json.loads((require_spec_dir() / "webhooks" / "OrderCreate.json").read_text())
    sandbox, client = wired
    await checkout(client)
    await sandbox.outbox.drain()
    payload = json.loads(receiver.requests[0][1])
    assert set(example["example"]) <= set(payload)


async def test_explicit_webhook_of_current_state_and_duplicates_on_demand(wired, receiver):
    _, client = wired
    await client.patch("/_sandbox/config", json={"webhooks": "off"})
    order = (await checkout(client))["order"]
    r = await client.post(
        "/_sandbox/ghl/webhooks", json={"type": "OrderStatusUpdate", "object_id": order["_id"]}
    )
    assert r.status_code == 200, r.text
    delivery = r.json()
    assert delivery["status"] == "delivered"
    assert delivery["attempts"][0]["status_code"] == 202
    again = await client.post(f"/_sandbox/webhooks/{delivery['id']}/send")
    assert again.json()["id"] == delivery["id"]
    bodies = [body for _, body, _ in receiver.requests]
    assert len(bodies) == 2 and bodies[0] == bodies[1]  # a true duplicate: same id, same bytes


async def test_held_webhooks_are_released_in_any_order(wired, receiver):
    _, client = wired
    await client.patch("/_sandbox/config", json={"webhooks": "hold"})
    await checkout(client)
    held = (await client.get("/_sandbox/webhooks", params={"status": "held"})).json()["data"]
    assert [d["type"] for d in held] == ["OrderCreate", "OrderStatusUpdate"]
    assert receiver.requests == []
    for delivery in reversed(held):
        await client.post(f"/_sandbox/webhooks/{delivery['id']}/send")
    assert [json.loads(b)["type"] for _, b, _ in receiver.requests] == [
        "OrderStatusUpdate",
        "OrderCreate",
    ]


async def test_failed_delivery_is_retried_then_marked_failed(wired, receiver):
    sandbox, client = wired
    await client.patch(
        "/_sandbox/config", json={"webhook_max_attempts": 3, "webhook_retry_seconds": 0}
    )
    receiver.status = 503
    await checkout(client, outcome="pending")
    await sandbox.outbox.drain()
    (delivery,) = sandbox.outbox.deliveries.values()
    assert delivery.status == "failed"
    assert [a["status_code"] for a in delivery.attempts] == [503, 503, 503]
    assert len({body for _, body, _ in receiver.requests}) == 1  # retries resend the same bytes


async def test_wizehire_events_pass_wizehire_verifier(wired, receiver):
    sandbox, client = wired
    r = await client.post(
        "/_sandbox/wizehire/events",
        json={"type": "order.created", "order": {"id": "wh_ord_7", "amount": "149.00"}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "delivered"
    source, body, headers = receiver.requests[-1]
    assert source == "wizehire"
    event_id = WizehireVerifier([DEV_WIZEHIRE_SECRET]).verify(body, headers)
    assert event_id == r.json()["id"]
    event = json.loads(body)
    assert event["type"] == "order.created"
    assert event["data"]["order"]["id"] == "wh_ord_7"
    # Wizehire now holds that order (what GET /v1/orders returns).
    assert "wh_ord_7" in sandbox.wizehire.orders
    with pytest.raises(SignatureError):
        WizehireVerifier(["whsec_" + "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA=="]).verify(body, headers)


async def test_wizehire_secret_is_configurable(wired, receiver):
    _, client = wired
    secret = "whsec_" + "c2FuZGJveC10ZXN0LXNlY3JldC1rZXktMTIzNA=="
    await client.patch("/_sandbox/config", json={"wizehire_secret": secret})
    await client.post(
        "/_sandbox/wizehire/events",
        json={"type": "refund.requested", "refund": {"order_id": "wh_ord_7"}},
    )
    _, body, headers = receiver.requests[-1]
    assert WizehireVerifier([secret]).verify(body, headers)
    assert json.loads(body)["data"]["refund"]["order_id"] == "wh_ord_7"


# --- end to end: the real service receives the sandbox's webhooks -----------------------------
async def test_service_accepts_the_sandboxs_signed_webhooks(client_factory):
    service = await client_factory()
    sandbox = Sandbox.build(
        SandboxConfig(service_url=str(service.base_url), webhooks="send", webhook_max_attempts=1),
        http=service,
    )
    app = create_sandbox_app(sandbox=sandbox, seed=True)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox"
    ) as client:
        await checkout(client)
        await sandbox.outbox.drain()
        r = await client.post("/_sandbox/wizehire/events", json={"type": "order.created"})
        assert r.status_code == 200

    answers: list[dict[str, Any]] = [d.attempts[-1] for d in sandbox.outbox.deliveries.values()]
    assert [a["status_code"] for a in answers] == [202, 202, 202], answers
    assert all(json.loads(a["response"])["status"] in ("queued", "ignored") for a in answers)
    types = [d.type for d in sandbox.outbox.deliveries.values()]
    assert types == ["OrderCreate", "OrderStatusUpdate", "order.created"]
    first = next(iter(sandbox.outbox.deliveries.values()))
    assert first.payload["locationId"] == LOC
