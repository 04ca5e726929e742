"""Flow 1 against a GHL that fails a third of the time (500s, timeouts, 429s; some after doing the
work) and a Wizehire that loses answers: every event still ends done, nothing exists twice."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.flows.conftest import LOCATION_ID, FlowKit
from wizesync.db.models import EventStatus
from wizesync_sandbox.defaults import BOOST_PRICE_ID
from wizesync_sandbox.settings import SandboxConfig

RATE = 1 / 3


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    # A short rate-limit window so the injected 429s ask for a short wait.
    return SandboxConfig(
        service_url=None, webhooks="off", fault_seed=20261127, ghl_rate_limit_interval_ms=300
    )


@pytest.fixture
def flow_settings_overrides() -> dict[str, Any]:
    return {"worker_max_attempts": 60}


@pytest.fixture
def flow_ghl_timeout() -> httpx.Timeout:
    return httpx.Timeout(0.5)


def customer_order(flow: FlowKit, email: str, phone: str) -> dict[str, Any]:
    order = flow.order()
    return {**order, "customer": {**order["customer"], "email": email, "phone": phone}}


def inject_chaos(flow: FlowKit) -> None:
    """A request meets at most one rule (the first that matches its method and path)."""
    rules: list[dict[str, Any]] = [
        {"method": "GET", "path": "/ghl/payments/*", "status": 500},
        {"method": "GET", "path": "/ghl/invoices*", "timeout": True, "hang_seconds": 3},
        {"method": "POST", "path": "/ghl/contacts/*", "status": 429},
        {"method": "POST", "path": "/ghl/invoices*", "status": 500, "phase": "after"},
        {
            "method": "POST",
            "path": "/ghl/payments/*",
            "timeout": True,
            "hang_seconds": 3,
            "phase": "after",
        },
        {"method": "GET", "path": "/ghl/*", "status": 429},
        {"method": "PATCH", "path": "/wizehire/*", "status": 503, "phase": "after"},
    ]
    for rule in rules:
        flow.fault(rate=RATE, **rule)


async def test_flaky_ghl_every_event_done_no_duplicates(flow: FlowKit) -> None:
    matched = []
    for n in range(2):  # two customers bought through a GHL checkout first
        answer = await flow.control.post(
            "/_sandbox/ghl/checkout",
            json={
                "location_id": LOCATION_ID,
                "items": [{"price_id": BOOST_PRICE_ID, "qty": 1}],
                "contact": {"email": f"checkout{n}@example.com"},
                "outcome": "paid",
            },
        )
        matched.append(answer.json()["order"]["_id"])
    orders = [customer_order(flow, f"checkout{n}@example.com", f"+1555555020{n}") for n in range(2)]
    orders += [customer_order(flow, f"buyer{n}@example.com", f"+1555555030{n}") for n in range(4)]
    inject_chaos(flow)
    ids = []
    for order in orders:
        ids.append(await flow.deliver_order("order.created", order))
        ids.append(await flow.deliver_order("order.created", order))  # and once more

    events = await flow.process(*ids, timeout=180)

    assert [e.status for e in events] == [EventStatus.DONE] * len(ids), [
        e.last_error for e in events if e.status != EventStatus.DONE
    ]
    assert sum(r.hits for r in flow.sb.faults.rules) > 10  # the chaos really happened
    flow.clear_faults()
    assert len(flow.contacts()) == len(orders)
    assert len(flow.invoices()) == 4
    assert len(flow.orders()) == len(orders)
    for order in orders:
        record = await flow.sync_order(order["id"])
        assert record is not None and record.ghl_order_id is not None
        assert len(flow.fulfillments(record.ghl_order_id)) == 1
        assert len(flow.transactions(record.ghl_order_id)) == 1
        assert len(flow.invoices(order["id"])) == (0 if record.ghl_order_id in matched else 1)
        syncs = flow.order_syncs(order["id"])
        assert len({c["idempotency_key"] for c in syncs}) == 1
        assert len([c for c in syncs if not c.get("replayed")]) == 1
        wizehire_side = flow.wizehire_order(order["id"])
        assert wizehire_side is not None
        assert wizehire_side["ghl_sync"]["payment_status"] == "paid"
        assert wizehire_side["ghl_sync"]["ghl_fulfillment_id"] == record.ghl_fulfillment_id
