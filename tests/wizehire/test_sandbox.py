"""The client against the fake Wizehire API of the sandbox, in process (httpx ASGITransport): the
bodies are accepted as the contract describes them, both auth modes work, a write whose answer was
lost is retried with the same key and performed once, and paging reaches every order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.wizehire import kit
from wizesync.wizehire.auth import ApiKeyAuth, ClientCredentialsAuth, WizehireAuth
from wizesync.wizehire.client import WizehireClient, idempotency_key
from wizesync_sandbox.core import Sandbox
from wizesync_sandbox.faults import FaultRule
from wizesync_sandbox.server import create_sandbox_app
from wizesync_sandbox.settings import SandboxConfig

ROOT = "http://sandbox.test"
API = f"{ROOT}/wizehire"
SANDBOX_KEY = "sbx_key_" + "k" * 24


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox.build(SandboxConfig(wizehire_api_key=SANDBOX_KEY, webhooks="off"))


@pytest.fixture
async def http(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    app = create_sandbox_app(sandbox=sandbox)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        yield client


def _client(http: httpx.AsyncClient, auth: WizehireAuth | None = None) -> WizehireClient:
    return WizehireClient(
        http, base_url=API, auth=auth or ApiKeyAuth(SANDBOX_KEY), sleep=kit.Sleeps()
    )


async def test_order_sync_and_refund_update_land_in_the_fake_wizehire(
    http: httpx.AsyncClient,
    sandbox: Sandbox,
) -> None:
    client = _client(http)
    key = idempotency_key("evt_1", "order-sync")
    first = await client.sync_order(kit.ORDER_ID, kit.order_sync(), idempotency_key=key)
    again = await client.sync_order(kit.ORDER_ID, kit.order_sync(), idempotency_key=key)
    await client.update_refund(
        kit.REFUND_ID, kit.refund_update(), idempotency_key=idempotency_key("evt_2", "refund")
    )

    order = sandbox.wizehire.orders[kit.ORDER_ID]
    assert order["ghl_sync"] == kit.ORDER_SYNC_JSON
    assert (first.replayed, again.replayed) == (False, True)
    refund = sandbox.wizehire.refunds[kit.REFUND_ID]
    assert {k: refund[k] for k in kit.REFUND_JSON} == kit.REFUND_JSON
    assert [h["status"] for h in refund["history"]] == ["manual_action_required"]
    calls = sandbox.wizehire.find_calls(method="PATCH")
    assert [c["idempotency_key"] for c in calls] == [key, key, "wizesync:evt_2:refund"]
    assert all(c["response"]["status"] == 200 for c in calls)


async def test_a_write_whose_answer_was_lost_is_resent_and_performed_once(
    http: httpx.AsyncClient,
    sandbox: Sandbox,
) -> None:
    # The fake does the work, then the answer is replaced by a 503: the client cannot know.
    sandbox.faults.add(
        FaultRule(
            method="PATCH", path="/wizehire/v1/orders/*/sync", status=503, phase="after", times=1
        )
    )
    result = await _client(http).sync_order(
        kit.ORDER_ID, kit.order_sync(), idempotency_key="wizesync:evt_3:order-sync"
    )

    assert result.replayed is True  # the second send was answered from Wizehire's key store
    calls = sandbox.wizehire.find_calls(method="PATCH")
    assert len(calls) == 2 and calls[1].get("replayed") is True
    assert sandbox.wizehire.orders[kit.ORDER_ID]["ghl_sync"] == kit.ORDER_SYNC_JSON


async def test_client_credentials_mode_gets_a_token_the_fake_accepts(
    http: httpx.AsyncClient,
    sandbox: Sandbox,
) -> None:
    auth = ClientCredentialsAuth(
        token_url=f"{API}/oauth/token", client_id=kit.CLIENT_ID, client_secret=kit.CLIENT_SECRET
    )
    client = _client(http, auth)
    await client.sync_order(kit.ORDER_ID, kit.order_sync(), idempotency_key="k1")
    await client.update_refund(kit.REFUND_ID, kit.refund_update(), idempotency_key="k2")

    assert len(sandbox.wizehire.find_calls(path="/oauth/token")) == 1
    (issued,) = sandbox.wizehire.access_tokens
    writes = sandbox.wizehire.find_calls(method="PATCH")
    assert {c["headers"]["authorization"] for c in writes} == {f"Bearer {issued}"}
    assert all(c["response"]["status"] == 200 for c in writes)


async def test_iter_orders_reads_every_order_of_the_fake_page_by_page(
    http: httpx.AsyncClient,
    sandbox: Sandbox,
) -> None:
    ids = [f"wh_ord_{n}" for n in range(1, 6)]
    for order_id in ids:
        sandbox.wizehire.put_order(kit.wizehire_order(order_id))
    since = datetime.now(UTC) - timedelta(hours=1)

    seen = [o.id async for o in _client(http).iter_orders(since, limit=2)]

    assert sorted(seen) == ids and len(seen) == len(set(seen))
    pages = sandbox.wizehire.find_calls(method="GET", path="/v1/orders")
    assert len(pages) == 3 and pages[0]["query"]["limit"] == "2"
    assert "cursor" not in pages[0]["query"] and pages[2]["response"]["body"]["next_cursor"] is None
