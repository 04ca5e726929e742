"""The orders flow under the stopwatch, against `wizesync sandbox` on loopback.

Same setup as `make demo` (scripts/demo.py `Stack`): `wizesync sandbox` and `wizesync serve`
(temp SQLite, in-process worker) as child processes on free loopback ports.

1. Latency at low load: `--latency-orders` signed `order.created` POSTs, one at a time, each sent
   only once the previous order's events (the GHL webhooks it caused included) are all handled and
   GHL's 10 s window for the location is at most half used (`--latency-window-share`; so no order
   waits for budget). Latency = the fulfillment's `createdAt` in the sandbox minus the wall-clock
   time just before the POST (same machine, same clock; the sandbox stamps milliseconds). Also the
   time to Wizehire's `PATCH .../sync`, the flow's last step.
2. Throughput at the limit: `--burst-orders` POSTed at once once the window is empty; the service's
   limiter spreads the GHL calls. Every 0.25 s the sandbox's `in_window` (GHL requests in the
   last 10 s for the location) is sampled: its mean after the first 10 s, over 100, is the share of
   the 100/10 s limit in use. Orders/s (all orders / time until the service's queue drained,
   i.e. the GHL webhooks they caused handled too) is compared with what the limit allows at the
   measured GHL calls per order (10 req/s / calls per order, counted until the queue drained).
   429s are the sandbox's `rejected` count for the location.

Every order is the sample order; by default all from one customer (`--customers repeat`: GHL
knows the contact, so the `match_or_invoice` strategy lists its orders first), or each from a
customer GHL has not seen (`--customers new`: the upsert creates the contact, which has no
orders to match).

    .venv/bin/python benchmarks/flows.py [--latency-orders 30] [--burst-orders 40]
                                         [--customers repeat|new]
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import re
import secrets
import shutil
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from wizesync import samples
from wizesync_sandbox.defaults import DEFAULT_LOCATION_ID

_spec = importlib.util.spec_from_file_location(
    "wizesync_demo", Path(__file__).resolve().parent.parent / "scripts" / "demo.py"
)
assert _spec and _spec.loader
demo = importlib.util.module_from_spec(_spec)
sys.modules["wizesync_demo"] = demo
_spec.loader.exec_module(demo)

LIMIT, WINDOW = 100, 10.0


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def limits(stack: Any) -> dict[str, int]:
    snap = stack.sandbox("/state", location_id=DEFAULT_LOCATION_ID)["rate_limits"]
    mine = [v for k, v in snap.items() if DEFAULT_LOCATION_ID in k] or list(snap.values())
    return {key: sum(v[key] for v in mine) for key in ("in_window", "today", "rejected")}


def synced(stack: Any, order_id: str) -> dict[str, Any] | None:
    order = stack.wizehire_order(order_id)
    sync = (order or {}).get("ghl_sync") or {}
    return order if sync.get("ghl_fulfillment_id") else None


def queue_idle(stack: Any) -> bool:
    counts = stack.http.get(f"{stack.service_url}/sync-status").json()["queue"]["counts"]
    return counts["queued"] + counts["running"] + counts["retry"] == 0


CUSTOMERS = "repeat"  # set by --customers


def new_order() -> dict[str, Any]:
    order = samples.wizehire_order()
    if CUSTOMERS == "new":  # GHL matches contacts by email, then phone: both unseen
        tag = secrets.token_hex(4)
        order["customer"] = {
            **order["customer"],
            "email": f"pat+{tag}@example.com",
            "phone": f"+1555{int(tag, 16) % 10**7:07d}",
        }
    return order


def ghl_calls_by_event(stack: Any, after_id: int = 0) -> collections.Counter[str]:
    """GHL requests the service made, from its own attempt log (`/admin/events/{id}`), as
    `<event type>: METHOD /path` with ids elided, for the inbox events after `after_id`."""
    counts: collections.Counter[str] = collections.Counter()
    before: int | None = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"before_id": before} if before else {})}
        rows = stack.http.get(f"{stack.service_url}/admin/events", params=params).json()["data"]
        rows = [r for r in rows if r["id"] > after_id]
        for row in rows:
            event = stack.http.get(f"{stack.service_url}/admin/events/{row['id']}").json()
            for attempt in event["attempt_log"]:
                for call in attempt["outbound_calls"]:  # {method, url, status, ms}
                    path = re.sub(r"^https?://[^/]+", "", call["url"]).split("?")[0]
                    if path.startswith("/ghl/"):  # the sandbox's fake GHL
                        path = re.sub(r"/[0-9a-f]{16,}", "/{id}", path.removeprefix("/ghl"))
                        counts[f"{event['type']}: {call['method']} {path}"] += 1
        if len(rows) < 500:
            return counts
        before = min(r["id"] for r in rows)


def newest_event_id(stack: Any) -> int:
    rows = stack.http.get(f"{stack.service_url}/admin/events", params={"limit": 1}).json()
    return rows["data"][0]["id"] if rows["data"] else 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def latency(stack: Any, n: int, in_window_at_most: int = LIMIT // 2) -> dict[str, Any]:
    to_fulfillment, to_sync, calls = [], [], []
    for _ in range(n):
        stack.wait_for(
            "GHL budget to free up",
            lambda: limits(stack)["in_window"] <= in_window_at_most,
            timeout=30,
            every=0.2,
        )
        before = limits(stack)["today"]
        order = new_order()
        t0 = time.time()
        stack.send_wizehire("order.created", {"order": order})
        done = stack.wait_for(
            f"order {order['id']}", lambda o=order: synced(stack, o["id"]), every=0.002
        )
        t_sync = time.time()
        ghl_order = done["ghl_sync"]["ghl_order_id"]
        ful = stack.ghl()["fulfillments"][ghl_order][0]
        to_fulfillment.append((_ts(ful["createdAt"]) - t0) * 1000)
        to_sync.append((t_sync - t0) * 1000)
        # The GHL webhooks this order caused (due GHL_WEBHOOK_SETTLE_SECONDS after they came)
        # are handled before counting, and before the next order: one order at a time.
        stack.wait_for(
            "the service's queue to drain", lambda: queue_idle(stack), timeout=30, every=0.05
        )
        calls.append(limits(stack)["today"] - before)
    return {
        "n": n,
        "fulfillment_ms": to_fulfillment,
        "sync_ms": to_sync,
        "ghl_calls_per_order": statistics.median(calls),
    }


def burst(stack: Any, n: int, calls_per_order: float) -> dict[str, Any]:
    stack.wait_for(
        "an empty GHL window", lambda: limits(stack)["in_window"] == 0, timeout=30, every=0.2
    )
    start_counts = limits(stack)
    orders = [new_order() for _ in range(n)]
    t0 = time.monotonic()
    for order in orders:
        stack.send_wizehire("order.created", {"order": order})
    pending = {o["id"] for o in orders}
    samples_in_window: list[tuple[float, int]] = []
    done_at: list[float] = []
    deadline = t0 + 60 + n * calls_per_order / (LIMIT / WINDOW) * 2
    while pending and time.monotonic() < deadline:
        now = time.monotonic() - t0
        samples_in_window.append((now, limits(stack)["in_window"]))
        for order in stack.sandbox("/wizehire/orders")["data"]:
            if order["id"] in pending and (order.get("ghl_sync") or {}).get("ghl_fulfillment_id"):
                pending.discard(order["id"])
                done_at.append(now)
        time.sleep(0.25)
    elapsed = max(done_at) if done_at else time.monotonic() - t0
    # The GHL webhooks these orders caused are still being handled: count their calls too, so
    # "calls per order" is the whole cost of an order.
    stack.wait_for(
        "the service's queue to drain", lambda: queue_idle(stack), timeout=120, every=0.25
    )
    drained = time.monotonic() - t0
    end = limits(stack)
    steady = [w for t, w in samples_in_window if WINDOW <= t <= elapsed]
    requests = end["today"] - start_counts["today"]
    # An order's work ends when the GHL webhooks it caused are handled too (the queue drained),
    # so the rate is orders per second of the whole run, against 10 req/s / calls per order.
    orders_per_s = len(done_at) / drained
    allowed_per_s = (LIMIT / WINDOW) / (requests / max(1, len(done_at)))
    return {
        "n": n,
        "synced": len(done_at),
        "unsynced": len(pending),
        "seconds": elapsed,
        "ghl_requests": requests,
        "rejected_429": end["rejected"] - start_counts["rejected"],
        "orders_per_s": orders_per_s,
        "allowed_orders_per_s": allowed_per_s,
        "drained": drained,
        "fraction_orders": orders_per_s / allowed_per_s,
        "fraction_window": (statistics.mean(steady) / LIMIT) if steady else None,
        "steady_samples": len(steady),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-orders", type=int, default=30)
    parser.add_argument("--burst-orders", type=int, default=40)
    parser.add_argument(
        "--latency-window-share",
        type=float,
        default=0.5,
        help="send each latency order once the location's GHL window is at most "
        "this share used (default 0.5)",
    )
    parser.add_argument(
        "--customers",
        choices=("repeat", "new"),
        default="repeat",
        help="every order from the sample customer (default), or each from a "
        "customer GHL has not seen",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="the service's DATABASE_URL (default: a temporary SQLite file); "
        "an empty PostgreSQL database, e.g. "
        "postgresql+asyncpg://postgres@127.0.0.1:5432/wizesync_bench",
    )
    args = parser.parse_args()
    global CUSTOMERS
    CUSTOMERS = args.customers
    # A long poll interval: the poller's GHL reads would otherwise share the budget measured here.
    extra_env = {"DATABASE_URL": args.database_url} if args.database_url else {}
    with demo.Stack(poll_interval=300, extra_env=extra_env) as stack:
        print(
            f"sandbox {stack.sandbox_url}, service {stack.service_url}, "
            f"{'PostgreSQL' if args.database_url else 'SQLite'}, {args.customers} customers, "
            f"in-process worker (logs: {stack.workdir})",
            flush=True,
        )
        lat = latency(stack, args.latency_orders, int(LIMIT * args.latency_window_share))
        if lat["n"]:
            by_event = ghl_calls_by_event(stack)
            print(
                "GHL requests per order by event (latency orders, from the attempt logs): "
                + "; ".join(f"{k} {v / lat['n']:.2f}" for k, v in sorted(by_event.items())),
                flush=True,
            )
            mark = newest_event_id(stack)
        f, s = lat["fulfillment_ms"], lat["sync_ms"]
        print(
            f"latency, {lat['n']} orders one at a time, order.created POST -> fulfillment in "
            f"GHL: p50 {percentile(f, 0.5):.0f} ms, p99 {percentile(f, 0.99):.0f} ms, max "
            f"{max(f):.0f} ms; -> Wizehire sync PATCH seen: p50 {percentile(s, 0.5):.0f} ms, "
            f"p99 {percentile(s, 0.99):.0f} ms; GHL calls per order (median, incl. the GHL "
            f"webhooks it causes): {lat['ghl_calls_per_order']}",
            flush=True,
        )
        b = burst(stack, args.burst_orders, lat["ghl_calls_per_order"])
        if b["n"] and lat["n"]:
            by_event = ghl_calls_by_event(stack, mark)
            print(
                "GHL requests per order by event (burst): "
                + "; ".join(f"{k} {v / b['n']:.2f}" for k, v in sorted(by_event.items())),
                flush=True,
            )
        window = (
            "n/a (run too short)"
            if b["fraction_window"] is None
            else f"{b['fraction_window']:.2f} ({b['steady_samples']} samples after 10 s)"
        )
        print(
            f"throughput, {b['n']} orders at once, one location: {b['synced']} synced "
            f"({b['unsynced']} not), last sync at {b['seconds']:.1f} s, queue drained at "
            f"{b['drained']:.1f} s = {b['orders_per_s']:.2f} orders/s; "
            f"{b['ghl_requests']} GHL requests until the queue drained "
            f"({b['ghl_requests'] / max(1, b['synced']):.1f} per order) -> the limit allows "
            f"{b['allowed_orders_per_s']:.2f} orders/s; "
            f"fraction {b['fraction_orders']:.2f} (the first window may be spent at once, "
            f"so short runs can exceed 1); mean share of the 100/10 s window in "
            f"use after 10 s: {window}; 429s: {b['rejected_429']}",
            flush=True,
        )
    shutil.rmtree(stack.workdir, ignore_errors=True)  # kept only when something went wrong
    return 0


if __name__ == "__main__":
    sys.exit(main())
