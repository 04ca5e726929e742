"""The fake Wizehire's data: its orders and refunds as the service reported them, every API call it
received, and the answers it gave per Idempotency-Key."""

from __future__ import annotations

import base64
import bisect
import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wizesync_sandbox.clock import Clock, parse_moment

Doc = dict[str, Any]


@dataclass
class StoredAnswer:
    fingerprint: str
    status: int
    body: Any


@dataclass
class WizehireState:
    clock: Clock
    orders: dict[str, Doc] = field(default_factory=dict)
    refunds: dict[str, Doc] = field(default_factory=dict)
    calls: list[Doc] = field(default_factory=list)
    answers: dict[str, StoredAnswer] = field(default_factory=dict)
    access_tokens: set[str] = field(default_factory=set)
    _index: list[tuple[datetime, str]] | None = field(default=None, repr=False)
    _index_size: int = field(default=0, repr=False)

    def reset(self) -> None:
        self.orders.clear()
        self.refunds.clear()
        self.calls.clear()
        self.answers.clear()
        self.access_tokens.clear()
        self._index = None

    def now(self) -> str:
        # Full precision: `updated_since` filters compare against it.
        return self.clock.now().isoformat().replace("+00:00", "Z")

    # --- orders ----------------------------------------------------------------------------------
    def put_order(self, order: Doc) -> Doc:
        """An order as Wizehire holds it (from a seed or an event the sandbox sent)."""
        current = self.orders.get(str(order["id"]), {})
        doc = {**current, **copy.deepcopy(order), "updated_at": self.now()}
        doc.setdefault("ghl_sync", None)
        self.orders[str(order["id"])] = doc
        self._index = None
        return doc

    def apply_sync(self, order_id: str, body: Doc) -> Doc:
        """`PATCH /v1/orders/{id}/sync`. An order Wizehire never announced through the sandbox
        (e.g. sent by `wizesync trigger`) is created on the fly rather than refused."""
        order = self.orders.get(order_id) or {"id": order_id, "ghl_sync": None}
        order["ghl_sync"] = {**(order.get("ghl_sync") or {}), **copy.deepcopy(body)}
        for key in ("ghl_location_id", "ghl_order_id"):
            if body.get(key):
                order[key] = body[key]
        order["updated_at"] = self.now()
        self.orders[order_id] = order
        self._index = None
        return order

    def apply_refund(self, refund_id: str, body: Doc) -> Doc:
        refund = self.refunds.get(refund_id) or {"id": refund_id, "history": []}
        refund.update(copy.deepcopy(body))
        refund["history"] = [
            *refund.get("history", []),
            {"at": self.now(), "status": body.get("status")},
        ]
        refund["updated_at"] = self.now()
        self.refunds[refund_id] = refund
        return refund

    def list_orders(
        self, updated_since: datetime | None, cursor: str | None, limit: int
    ) -> tuple[list[Doc], str | None]:
        """Oldest change first, keyset-paged on (updated_at, id): an order changed while a reader
        pages moves behind its cursor and shows up again on a later page, never skipped."""
        index = self._sorted_index()
        after = _decode_cursor(cursor)
        if after is not None:
            start = bisect.bisect_right(index, after)
        elif updated_since is not None:
            start = bisect.bisect_left(index, (updated_since, ""))
        else:
            start = 0
        if after is not None and updated_since is not None:
            start = max(start, bisect.bisect_left(index, (updated_since, "")))
        keys = index[start : start + limit]
        page = [self.orders[order_id] for _, order_id in keys]
        more = start + limit < len(index)
        return page, _encode_cursor(keys[-1]) if more and keys else None

    def _sorted_index(self) -> list[tuple[datetime, str]]:
        # Rebuilt only after a write: a reader paging through 100,000 orders sorts them once.
        if self._index is None or self._index_size != len(self.orders):
            self._index = sorted(
                (parse_moment(d["updated_at"]) or datetime.min.replace(tzinfo=UTC), d["id"])
                for d in self.orders.values()
            )
            self._index_size = len(self.orders)
        return self._index

    # --- calls -----------------------------------------------------------------------------------
    def record(self, call: Doc) -> Doc:
        call["seq"] = len(self.calls) + 1
        call["at"] = self.now()
        self.calls.append(call)
        return call

    def find_calls(self, *, method: str | None = None, path: str | None = None) -> list[Doc]:
        return [
            c
            for c in self.calls
            if (method is None or c["method"] == method.upper())
            and (path is None or c["path"].startswith(path))
        ]

    def dump(self) -> Doc:
        return {
            "orders": list(self.orders.values()),
            "refunds": list(self.refunds.values()),
            "calls": list(self.calls),
        }


class BadCursor(ValueError):
    pass


def _encode_cursor(key: tuple[datetime, str]) -> str:
    raw = json.dumps({"u": key[0].isoformat(), "i": key[1]}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = datetime.fromisoformat(raw["u"])
        order_id = str(raw["i"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BadCursor("cursor is not one this API gave out") from exc
    if moment.tzinfo is None:
        raise BadCursor("cursor is not one this API gave out")
    return moment, order_id
