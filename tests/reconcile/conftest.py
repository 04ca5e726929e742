"""Reconciliation tests: the flow kit (real handlers, clients and Worker against the sandbox) plus
a `Reconciler` wired to it, and ways to plant disagreements on either side."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.flows.conftest import (  # noqa: F401  (fixtures the `flow` fixture depends on)
    LOCATION_ID,
    FlowKit,
    flow,
    flow_ghl_timeout,
    flow_limiter,
    flow_mapping,
    flow_settings_overrides,
    sandbox_config,
)
from tests.test_cli import cli_env  # noqa: F401  (a fixture for test_cli.py)
from wizesync.db import reconcile_repo
from wizesync.db.reconcile_models import ReconciliationItem, ReconciliationRun
from wizesync.reconcile.runs import Reconciler, Window
from wizesync_sandbox.defaults import BOOST_PRICE_ID


@dataclass
class ReconKit:
    flow: FlowKit

    def reconciler(self, **options: Any) -> Reconciler:
        return Reconciler(
            settings=self.flow.settings,
            sessionmaker=self.flow.sessionmaker,
            services=self.flow.services,
            http=self.flow.http,
            **options,
        )

    def window(self) -> Window:
        now = datetime.now(UTC)
        return Window(now - timedelta(days=1), now + timedelta(minutes=5))

    async def run(
        self, *, heal: bool = False, reconciler: Reconciler | None = None, trigger: str = "manual"
    ) -> ReconciliationRun:
        rec = reconciler or self.reconciler()
        run_id = await rec.start(trigger=trigger, window=self.window(), heal=heal)
        run = await rec.execute(run_id)
        assert run is not None
        assert run.status == "done", run.error
        return run

    async def items(self, run_id: int) -> list[ReconciliationItem]:
        async with self.flow.sessionmaker() as session:
            return await reconcile_repo.list_items(session, run_id, limit=100_000)

    async def by_order(self, run_id: int) -> dict[str, ReconciliationItem]:
        out: dict[str, ReconciliationItem] = {}
        for item in await self.items(run_id):
            key = item.wizehire_order_id or f"ghl:{item.ghl_order_id}"
            assert key not in out, f"two items for {key}"
            out[key] = item
        return out

    # --- planting ----------------------------------------------------------------------------
    def new_order(self, **overrides: Any) -> dict[str, Any]:
        created = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        return self.flow.order(
            f"wh_ord_{uuid.uuid4().hex[:10]}", **{"created_at": created, **overrides}
        )

    def seed_wizehire(self, order: dict[str, Any]) -> None:
        """Wizehire holds the order; nothing is sent to the service."""
        self.flow.sb.wizehire.put_order(order)

    async def synced(self, **overrides: Any) -> dict[str, Any]:
        """An order Wizehire holds and the service synced to GHL end to end."""
        order = self.new_order(**overrides)
        self.seed_wizehire(order)
        inbox_id = await self.flow.deliver_order("order.created", order)
        [row] = await self.flow.process(inbox_id)
        assert row.status == "done", row.last_error
        return order

    def wizehire_doc(self, order_id: str) -> dict[str, Any]:
        doc = self.flow.sb.wizehire.orders[order_id]
        return doc

    def change_wizehire(self, order_id: str, **fields: Any) -> None:
        """Change Wizehire's copy only (the order itself or, with `sync=...`, its sync state)."""
        doc = copy.deepcopy(self.wizehire_doc(order_id))
        sync = fields.pop("sync", None)
        doc.update(fields)
        if sync is not None:
            doc["ghl_sync"] = {**(doc.get("ghl_sync") or {}), **sync}
        self.flow.sb.wizehire.put_order(doc)

    async def ghl_order_of(self, order_id: str) -> dict[str, Any]:
        record = await self.flow.sync_order(order_id)
        assert record is not None and record.ghl_order_id, record
        return self.flow.sb.store.orders[record.ghl_order_id]

    def checkout(self, *, qty: int = 2, email: str = "nobody-linked@example.com") -> dict[str, Any]:
        """A GHL checkout of a mapped price that no Wizehire order points to."""
        result = self.flow.sb.orders.checkout(
            LOCATION_ID,
            items=[{"price_id": BOOST_PRICE_ID, "qty": qty}],
            contact={"email": email, "name": "Nobody Linked"},
        )
        return result["order"]

    def refund_in_ghl(self, ghl_order_id: str, amount: Decimal) -> None:
        [txn] = [
            t
            for t in self.flow.sb.store.transactions.values()
            if t.get("entityId") == ghl_order_id and t["status"] == "succeeded"
        ]
        self.flow.sb.ledger.refund(txn, amount)

    def drop_fulfillment(self, ghl_order_id: str) -> None:
        self.flow.sb.store.fulfillments.pop(ghl_order_id, None)
        self.flow.sb.store.orders[ghl_order_id]["fulfillmentStatus"] = "unfulfilled"


@pytest.fixture
def recon(flow: FlowKit) -> ReconKit:  # noqa: F811
    return ReconKit(flow)
