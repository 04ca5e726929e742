"""The chaos run's verdict, from the sandbox's own records and the inbox: what must hold after any
number of kills, cuts, faults and duplicates, and the figures that show how hard it was tried.

`collect` reads everything once the run has drained; each `check_*` is a pure function of those
records that returns the broken promises in words (empty: kept), so each can be tested on its own.
"""

from __future__ import annotations

import itertools
import statistics
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import select

from wizesync.db.models import InboxEvent

if TYPE_CHECKING:
    from tests.chaos.driver import Order

FINAL_EVENT_STATUSES = ("done", "ignored")
OUTAGE_GRACE_SECONDS = 5.0  # a pool reconnects on its next checkout after the cut ends
Doc = dict[str, Any]


@dataclass
class InboxRow:
    source: str
    event_id: str
    type: str
    status: str
    attempts: int
    wait_seconds: float | None  # received -> handled
    last_error: str | None


@dataclass
class Records:
    ghl: Doc  # the sandbox's GHL store: contacts, invoices, orders, transactions, fulfillments
    webhooks: list[Doc]  # the sandbox's outbox, with every delivery attempt
    oauth_calls: list[Doc]
    rate_limits: dict[str, Doc]
    faults: list[Doc]
    wizehire_orders: dict[str, Doc]
    wizehire_refunds: dict[str, Doc]
    wizehire_patches: list[Doc]
    inbox: list[InboxRow]


async def collect(control: httpx.AsyncClient, sessionmaker: Any) -> Records:
    state = (await control.get("/_sandbox/state", timeout=300)).json()
    orders = (await control.get("/_sandbox/wizehire/orders")).json()["data"]
    refunds = (await control.get("/_sandbox/wizehire/refunds")).json()["data"]
    patches = (
        await control.get("/_sandbox/wizehire/calls", params={"method": "PATCH"}, timeout=300)
    ).json()["data"]
    columns = (
        InboxEvent.source,
        InboxEvent.event_id,
        InboxEvent.type,
        InboxEvent.status,
        InboxEvent.attempts,
        InboxEvent.received_at,
        InboxEvent.handled_at,
        InboxEvent.last_error,
    )
    async with sessionmaker() as session:
        rows = (await session.execute(select(*columns))).all()
    inbox = [
        InboxRow(
            r.source,
            r.event_id,
            r.type,
            r.status,
            r.attempts,
            (r.handled_at - r.received_at).total_seconds() if r.handled_at else None,
            r.last_error,
        )
        for r in rows
    ]
    return Records(
        ghl=state["ghl"],
        webhooks=state["webhooks"],
        oauth_calls=state["oauth"]["calls"],
        rate_limits=state["rate_limits"],
        faults=state["faults"],
        wizehire_orders={o["id"]: o for o in orders},
        wizehire_refunds={r["id"]: r for r in refunds},
        wizehire_patches=patches,
        inbox=inbox,
    )


def _sync(records: Records, order_id: str) -> Doc:
    return (records.wizehire_orders.get(order_id) or {}).get("ghl_sync") or {}


def _payments_by_order(records: Records) -> defaultdict[str, list[Doc]]:
    by_order: defaultdict[str, list[Doc]] = defaultdict(list)
    for txn in records.ghl["transactions"]:
        if txn.get("entityType") == "order":
            by_order[txn["entityId"]].append(txn)
    return by_order


def check_orders(orders: Iterable[Order], records: Records) -> list[str]:
    """Every order synced to Wizehire with GHL's payment status; in GHL exactly one order,
    payment and fulfillment per order, one invoice (none for a GHL checkout order), one contact
    per customer, and nothing else."""
    problems: list[str] = []
    orders = list(orders)
    ghl = records.ghl
    invoices_by_name = Counter(i.get("name") for i in ghl["invoices"])
    payments = _payments_by_order(records)
    ghl_orders = {o["_id"] for o in ghl["orders"]}
    claimed: Counter[str] = Counter()
    for order in orders:
        sync = _sync(records, order.id)
        ghl_order_id = sync.get("ghl_order_id")
        if not ghl_order_id or not sync.get("ghl_fulfillment_id"):
            problems.append(f"{order.id} ({order.kind}) not synced: {sync}")
            continue
        claimed[ghl_order_id] += 1
        wanted = "partially_refunded" if order.refund_id else "paid"
        if sync.get("payment_status") != wanted:
            problems.append(
                f"{order.id}: Wizehire has payment_status "
                f"{sync.get('payment_status')}, expected {wanted}"
            )
        invoices = invoices_by_name[f"Wizehire order {order.id}"]
        if invoices != (0 if order.kind == "checkout" else 1):
            problems.append(f"{order.id} ({order.kind}): {invoices} invoices in GHL")
        paid = [t for t in payments[ghl_order_id] if t.get("status") != "failed"]
        if len(paid) != 1:
            problems.append(f"{order.id}: {len(paid)} payments on GHL order {ghl_order_id}")
        fulfillments = ghl["fulfillments"].get(ghl_order_id, [])
        if len(fulfillments) != 1:
            problems.append(f"{order.id}: {len(fulfillments)} fulfillments")
        if ghl_order_id not in ghl_orders:
            problems.append(f"{order.id}: GHL order {ghl_order_id} does not exist")
    problems += [
        f"GHL order {g} synced with {n} Wizehire orders" for g, n in claimed.items() if n > 1
    ]
    if len(ghl_orders) != len(orders):
        problems.append(f"{len(ghl_orders)} GHL orders for {len(orders)} orders")
    emails = Counter(c.get("email") for c in ghl["contacts"])
    problems += [f"{n} GHL contacts for {e}" for e, n in emails.items() if n > 1]
    return problems


def applied_patches(records: Records) -> list[Doc]:
    """The Wizehire writes that took effect: answered 200 by the fake, not a replay of a stored
    answer (an injected fault after the work hides the 200 from the service, not from here)."""
    return [
        c
        for c in records.wizehire_patches
        if not c.get("replayed") and (c.get("response") or {}).get("status") == 200
    ]


def check_wizehire_once(records: Records) -> list[str]:
    """Each Idempotency-Key took effect once: a retry replayed the stored answer."""
    by_key = Counter(c["idempotency_key"] for c in applied_patches(records))
    return [f"Wizehire applied key {k} {n} times" for k, n in by_key.items() if n > 1]


def check_refunds(orders: Iterable[Order], records: Records, amount: Decimal) -> list[str]:
    """Every refund settled (`succeeded`) in Wizehire, each status told once, and the money
    refunded once in GHL."""
    problems: list[str] = []
    told: defaultdict[str, list[str]] = defaultdict(list)
    for call in applied_patches(records):
        if call["path"].startswith("/v1/refunds/"):
            told[call["path"].rsplit("/", 1)[1]].append(str((call.get("body") or {}).get("status")))
    payments = _payments_by_order(records)
    for order in orders:
        if order.refund_id is None:
            continue
        record = records.wizehire_refunds.get(order.refund_id)
        if record is None or record.get("status") != "succeeded":
            problems.append(f"refund {order.refund_id}: {record and record.get('status')}")
        statuses = told[order.refund_id]
        if len(statuses) != len(set(statuses)):
            problems.append(f"refund {order.refund_id}: Wizehire told {statuses}")
        refunded = [
            Decimal(str(t.get("amountRefunded") or 0))
            for t in payments.get(_sync(records, order.id).get("ghl_order_id") or "", [])
        ]
        if sum(refunded, Decimal(0)) != amount:
            problems.append(f"refund {order.refund_id}: GHL refunded {refunded}, not {amount}")
    return problems


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def in_outage(outages: list[tuple[float, float]], at: str) -> bool:
    moment = _ts(at)
    return any(down - 0.5 <= moment <= up + OUTAGE_GRACE_SECONDS for down, up in outages)


def check_webhooks(records: Records, outages: list[tuple[float, float]]) -> list[str]:
    """No event lost: every webhook answered 2xx is in the inbox and ended done (or ignored, a
    type the service does not handle); none was never answered 2xx; nothing in the inbox ended
    otherwise. No 5xx answer but 503 while PostgreSQL was cut."""
    problems: list[str] = []
    rows = {(r.source, r.event_id): r for r in records.inbox}
    wrong_5xx: list[str] = []
    for delivery in records.webhooks:
        name = f"{delivery['source']} {delivery['type']} {delivery['id']}"
        for attempt in delivery["attempts"]:
            code = attempt.get("status_code") or 0
            if code >= 500 and not (code == 503 and in_outage(outages, attempt["at"])):
                wrong_5xx.append(
                    f"{name} -> {code} at {attempt['at']}: {str(attempt.get('response', ''))[:200]}"
                )
        if not any(200 <= (a.get("status_code") or 0) < 300 for a in delivery["attempts"]):
            if delivery["status"] != "skipped":
                problems.append(f"{name} never answered 2xx ({delivery['status']})")
            continue
        row = rows.get((delivery["source"], delivery["id"]))
        if row is None:
            problems.append(f"LOST: {name} answered 2xx, not in the inbox")
        elif row.status not in FINAL_EVENT_STATUSES:
            problems.append(f"{name} ended {row.status}: {row.last_error}")
    problems += [f"5xx outside the PostgreSQL cut: {x}" for x in wrong_5xx[:20]]
    if len(wrong_5xx) > 20:
        problems.append(f"... and {len(wrong_5xx) - 20} more 5xx outside the cut")
    unfinished = [r for r in records.inbox if r.status not in FINAL_EVENT_STATUSES]
    problems += [
        f"inbox {r.source} {r.type} {r.event_id} ended {r.status}: {r.last_error}"
        for r in unfinished[:20]
    ]
    return problems


def refreshes_by_location(records: Records) -> tuple[dict[str, list[float]], list[Doc]]:
    """Successful refresh-token grants per location (times), and the refused ones."""
    done: defaultdict[str, list[float]] = defaultdict(list)
    refused = []
    for call in records.oauth_calls:
        if call["grant_type"] != "refresh_token":
            continue
        if call.get("outcome") == "ok":
            done[call.get("locationId") or "?"].append(_ts(call["at"]))
        else:
            refused.append(call)
    return {k: sorted(v) for k, v in done.items()}, refused


def check_tokens(records: Records, renew_every: float) -> list[str]:
    """One refresh per expiry per location across processes: none refused (a second refresh of
    the same single-use refresh token is), and none sooner than the token's usable life after
    the one before (2 s of slack for the clocks of two processes)."""
    refreshes, refused = refreshes_by_location(records)
    problems = [f"token refresh refused: {c}" for c in refused]
    for location_id, times in refreshes.items():
        close = [round(b - a, 1) for a, b in itertools.pairwise(times) if b - a < renew_every - 2]
        if close:
            problems.append(
                f"{location_id}: refreshes {close} s apart (a token is usable "
                f"{renew_every:.0f} s): more than one per expiry"
            )
    return problems


def check_rate_limits(records: Records) -> list[str]:
    rejected = {k: v["rejected"] for k, v in records.rate_limits.items() if v["rejected"]}
    return [f"GHL answered 429 {sum(rejected.values())} times: {rejected}"] if rejected else []


def machine_load() -> str:
    try:
        return subprocess.run(
            ["uptime"], capture_output=True, text=True, check=False, timeout=5
        ).stdout.strip()
    except OSError:
        return "(uptime unavailable)"


def _p(values: list[float], share: float) -> float:
    return values[int(share * (len(values) - 1))]


def describe(records: Records, orders: list[Order]) -> list[tuple[str, str]]:
    """The figures the records hold (the driver adds its own: kills, cut, duplicates, time)."""
    ghl = records.ghl
    lines: list[tuple[str, str]] = []
    kinds = Counter(o.kind for o in orders)
    lines.append(
        (
            "orders",
            f"{len(orders)} ({kinds['paid']} paid, {kinds['pending']} pending "
            f"then paid, {kinds['checkout']} paid in a GHL checkout first)",
        )
    )
    lines.append(("refunds requested", str(sum(1 for o in orders if o.refund_id))))
    fulfillments = sum(len(v) for v in ghl["fulfillments"].values())
    lines.append(
        (
            "GHL effects",
            f"{len(ghl['contacts'])} contacts, {len(ghl['invoices'])} "
            f"invoices, {len(ghl['orders'])} orders, {len(ghl['transactions'])} payments, "
            f"{fulfillments} fulfillments",
        )
    )
    applied = applied_patches(records)
    replayed = sum(1 for c in records.wizehire_patches if c.get("replayed"))
    lines.append(
        (
            "Wizehire PATCHes",
            f"{len(records.wizehire_patches)} received, "
            f"{len(applied)} applied, {replayed} replays of a stored answer",
        )
    )
    sources = Counter(d["source"] for d in records.webhooks)
    codes: Counter[str] = Counter()
    for delivery in records.webhooks:
        for attempt in delivery["attempts"]:
            codes[str(attempt.get("status_code") or "no answer")] += 1
    lines.append(
        (
            "webhooks made",
            f"{len(records.webhooks)} ({sources['wizehire']} Wizehire, {sources['ghl']} GHL)",
        )
    )
    lines.append(
        (
            "delivery attempts",
            f"{sum(codes.values())}: " + ", ".join(f"{k} x{v}" for k, v in sorted(codes.items())),
        )
    )
    statuses = Counter(r.status for r in records.inbox)
    lines.append(
        (
            "inbox events",
            f"{len(records.inbox)}: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())),
        )
    )
    tries = sorted(float(r.attempts) for r in records.inbox if r.status == "done")
    if tries:
        lines.append(
            (
                "attempts per done event",
                f"mean {statistics.fmean(tries):.2f}, p95 "
                f"{_p(tries, 0.95):.0f}, max {tries[-1]:.0f}",
            )
        )
    waits = sorted(
        r.wait_seconds
        for r in records.inbox
        if r.wait_seconds is not None and r.type == "order.created"
    )
    if waits:
        lines.append(
            (
                "order.created received -> done",
                f"p50 {statistics.median(waits):.1f} s, "
                f"p95 {_p(waits, 0.95):.1f} s, max {waits[-1]:.1f} s",
            )
        )
    refreshes, refused = refreshes_by_location(records)
    lines.append(
        (
            "token refreshes",
            f"{sum(len(t) for t in refreshes.values())} over "
            f"{len(refreshes)} locations, {len(refused)} refused",
        )
    )
    requests = sum(v["today"] for k, v in records.rate_limits.items() if k != "oauth")
    rejected = sum(v["rejected"] for v in records.rate_limits.values())
    lines.append(
        (
            "GHL API requests",
            f"{requests} ({requests / max(len(orders), 1):.1f} per order), {rejected} answered 429",
        )
    )
    hits: Counter[str] = Counter()
    for rule in records.faults:
        what = "hang->504" if rule["timeout"] else str(rule["status"])
        after = " after the work" if rule["phase"] == "after" else ""
        hits[f"{rule['method']} {rule['path']} {what}{after}"] += rule["hits"]
    lines.append(
        (
            "faults injected",
            f"{sum(hits.values())}: " + "; ".join(f"{k} x{v}" for k, v in hits.items()),
        )
    )
    return lines


def faults_injected(records: Records) -> int:
    return sum(rule["hits"] for rule in records.faults)


def answered_2xx(records: Records) -> int:
    return sum(
        1
        for d in records.webhooks
        if any(200 <= (a.get("status_code") or 0) < 300 for a in d["attempts"])
    )
