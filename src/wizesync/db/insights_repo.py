"""SQL the revenue insights need from the sync records (`sync_orders`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wizesync.db.sync_models import SyncOrder

_CHUNK = 500  # bound the IN list


async def invoice_order_items(
    session: AsyncSession, location_id: str, ghl_order_ids: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """{GHL order id: the Wizehire order's `items`} for the GHL orders among `ghl_order_ids` that
    GHL made from the service's own invoice (`ghl_order_source = 'invoice'`) on this location."""
    out: dict[str, list[dict[str, Any]]] = {}
    ids = list(dict.fromkeys(ghl_order_ids))
    for start in range(0, len(ids), _CHUNK):
        stmt = select(SyncOrder.ghl_order_id, SyncOrder.order_snapshot).where(
            SyncOrder.ghl_location_id == location_id,
            SyncOrder.ghl_order_id.in_(ids[start : start + _CHUNK]),
            SyncOrder.ghl_order_source == "invoice",
        )
        for order_id, snapshot in (await session.execute(stmt)).all():
            items = (snapshot or {}).get("items")
            if order_id and isinstance(items, list):
                out[order_id] = items
    return out
