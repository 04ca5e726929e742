"""Where one order's time goes: the `benchmarks/flows.py` latency setup, with timing spans.

Same stack as `benchmarks/flows.py` (scripts/demo.py `Stack`: `wizesync sandbox` + `wizesync
serve`, SQLite, in-process worker), but the service is started with `benchmarks/flows_trace.py`
installed, which logs a span for intake, claim, each step and save of the order handler, each GHL
call (budget reservation, HTTP round trip, what the answer taught the limiter), and every SQL
statement and commit. `--orders` orders are sent one at a time at low load (the GHL window at
most half used), and the per-step timeline of the `order.created` attempt is printed: the
median over the orders of each step's start and duration, measured from just before the POST,
up to the fulfillment's creation (the `POST .../fulfillments` answer).

    .venv/bin/python benchmarks/flows_breakdown.py [--orders 15] [--show 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import flows
from wizesync import samples

HERE = Path(__file__).resolve().parent


class TracedStack(flows.demo.Stack):  # type: ignore[name-defined,misc]
    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        if name == "service":
            trace = str(self.workdir / "trace.jsonl")
            code = (
                f"import sys; sys.path.insert(0, {str(HERE)!r}); import flows_trace; "
                f"flows_trace.install({trace!r}); from wizesync.cli import main; "
                "sys.argv[0] = 'wizesync'; sys.exit(main())"
            )
            argv = [sys.executable, "-c", code, *argv[1:]]
        super()._spawn(name, argv, env)

    def spans(self) -> list[dict[str, Any]]:
        path = self.workdir / "trace.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def one_order(stack: TracedStack) -> tuple[float, str]:
    stack.wait_for(
        "GHL budget to free up",
        lambda: flows.limits(stack)["in_window"] <= flows.LIMIT // 2,
        timeout=30,
        every=0.2,
    )
    order = samples.wizehire_order()
    t0 = time.time()
    stack.send_wizehire("order.created", {"order": order})
    stack.wait_for(f"order {order['id']}", lambda: flows.synced(stack, order["id"]), every=0.002)
    # The GHL webhooks this order caused, handled before the next order.
    stack.wait_for(
        "the service's queue to drain", lambda: flows.queue_idle(stack), timeout=30, every=0.05
    )
    return t0, order["id"]


def timeline(spans: list[dict[str, Any]], t0: float, t1: float) -> list[dict[str, Any]]:
    """The spans of the `order.created` attempt that started after t0 (and before t1), up to
    and including the fulfillment's POST, relative to t0 (ms)."""
    mine = [s for s in spans if t0 <= s["s"] < t1]
    run = next(s for s in mine if s["n"] == "worker.run" and s.get("type") == "order.created")
    task = run["t"]
    steps = []
    intake = next((s for s in mine if s["n"] == "intake.store"), None)
    if intake:
        steps.append({**intake, "rel": (intake["s"] - t0) * 1000})
    for s in sorted((s for s in mine if s["t"] == task), key=lambda s: s["s"]):
        steps.append({**s, "rel": (s["s"] - t0) * 1000})
    others = [s for s in mine if s["t"] != task and s["n"] == "worker.run"]
    return steps + [{**s, "rel": (s["s"] - t0) * 1000, "other": True} for s in others]


def label(s: dict[str, Any]) -> str:
    if s["n"] == "ghl.send":
        return "ghl.send " + re.sub(r"/[0-9a-f]{16,}", "/{id}", s["call"])
    if s["n"] == "db.sql":
        return f"db.sql {s['sql']}"
    if s["n"] == "worker.run":
        return f"worker.run {s['type']}"
    return str(s["n"])


def fulfillment_end(steps: list[dict[str, Any]]) -> float | None:
    for s in steps:
        if s["n"] == "ghl.send" and s["call"].startswith("POST") and "fulfillments" in s["call"]:
            return float(s["rel"] + s["ms"])
    return None


def summarise(runs: list[list[dict[str, Any]]]) -> None:
    # Totals per kind of span inside the order.created attempt, up to the fulfillment's answer.
    totals: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, list[int]] = defaultdict(list)
    ends, pickups = [], []
    for steps in runs:
        end = fulfillment_end(steps)
        if end is None:
            continue
        ends.append(end)
        run = next(s for s in steps if s["n"] == "worker.run" and not s.get("other"))
        intake = next((s for s in steps if s["n"] == "intake.store"), None)
        if intake:
            pickups.append(run["rel"] - (intake["rel"] + intake["ms"]))
            totals["0 POST -> intake stored (incl. HTTP, verify)"].append(
                intake["rel"] + intake["ms"]
            )
        kinds: dict[str, float] = defaultdict(float)
        n: dict[str, int] = defaultdict(int)
        for s in steps:
            if s.get("other") or s["rel"] > end or s["n"] in ("worker.run", "intake.store"):
                continue
            key = label(s)
            if s["n"] == "ghl.send":
                key = "ghl.send (acquire + HTTP + observe)"
                kinds[f"  {label(s)}"] += s["ms"]
                n[f"  {label(s)}"] += 1
            if s["n"] == "db.sql":
                key = f"db.sql {s['sql'].split()[0]}"
            kinds[key] += s["ms"]
            n[key] += 1
        for key, value in kinds.items():
            totals[key].append(value)
            counts[key].append(n[key])
    print(
        f"\n{len(ends)} orders; POST -> fulfillment POST answered: median "
        f"{statistics.median(ends):.1f} ms (p90 {sorted(ends)[int(0.9 * (len(ends) - 1))]:.1f})"
    )
    if pickups:
        print(
            f"intake committed -> worker attempt started (pickup): median "
            f"{statistics.median(pickups):.1f} ms"
        )
    print(
        f"{'span (sum per order, until the fulfillment; nested spans overlap)':70} "
        f"{'median ms':>9} {'calls':>5}"
    )
    for key in sorted(totals):
        print(
            f"{key[:70]:70} {statistics.median(totals[key]):9.1f} "
            f"{statistics.median(counts.get(key) or [1]):5.0f}"
        )


def show(steps: list[dict[str, Any]]) -> None:
    end = fulfillment_end(steps) or 1e9
    print("\none order's timeline (ms from just before the POST; nesting by start time):")
    for s in steps:
        if s["rel"] > end + 50:
            continue
        who = "  [other event] " if s.get("other") else ""
        print(f"{s['rel']:8.1f} +{s['ms']:7.2f}  {who}{label(s)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=15)
    parser.add_argument("--show", type=int, default=1, help="orders whose timeline to print")
    args = parser.parse_args()
    with TracedStack(poll_interval=300) as stack:
        print(f"service log and trace in {stack.workdir}", flush=True)
        marks = [one_order(stack) for _ in range(args.orders)]
        spans = stack.spans()
    bounds = [t for t, _ in marks] + [time.time() + 3600]
    runs = []
    for i, (t0, _) in enumerate(marks):
        try:
            runs.append(timeline(spans, t0, bounds[i + 1]))
        except StopIteration:
            print(f"order {i}: no order.created attempt in the trace", file=sys.stderr)
    runs = runs[1:] if len(runs) > 2 else runs  # the first order warms caches and connections
    ordered = sorted(runs, key=lambda r: fulfillment_end(r) or 0)
    for steps in ordered[len(ordered) // 2 : len(ordered) // 2 + args.show]:
        show(steps)
    summarise(runs)
    if os.environ.get("KEEP_TRACE") is None:
        import shutil

        shutil.rmtree(stack.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
