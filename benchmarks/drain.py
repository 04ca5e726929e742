"""Drain benchmark: a backlog queued straight into the inbox, drained by 1, 2, 4 worker processes.

    .venv/bin/python benchmarks/drain.py --sizes 10000,50000 --workers 1,2,4
    .venv/bin/python benchmarks/drain.py --sizes 200000 --workers 4
    .venv/bin/python benchmarks/drain.py --fairness        # one lane's burst vs another's order

For each (size, workers): a scratch PostgreSQL database (`wizesync_drain_<pid>_<hex>`, dropped at
the end, also on Ctrl-C), migrated; autovacuum off on the queue's tables, so the planner's
statistics stay as stale as they get after a burst (never analyzed); `size` events stored with
one INSERT ... SELECT (the inbox's triggers run per row, as for a webhook): every 5th event on one
of 10 hot ordering keys, the rest on keys of about 4 events each, spread over 50 lanes
(locations). Then `workers` processes (`Worker`, the real claim/finish path, concurrency
`--concurrency`, a no-op handler, logging at WARNING) are started together and drain the queue.

Figures: drain time from "go" to the last handler's end, events/s, wall and CPU per event (the
worker processes' own from "go" on, and PostgreSQL's backends for this database, from /proc),
and `uptime`'s load average at the start and the end. Per-key order is checked from the
handlers' own records (inbox id, key, start and end times, across processes): for each key the
starts are in id order and no two runs overlap; every event ran exactly once.

`--fairness`: a lane with a burst of `--burst` events (one key each), stored first, and then one
event of another lane; with 1 worker process, how long the single event waited against how long
the burst took (the rule: claims serve the lane served longest ago first).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ingest import (  # noqa: E402
    backend_cpu,
    cpu_delta,
    plain_dsn,
    process_cpu_seconds,
    with_database,
)

HOT_KEYS = 10
CHUNK = 2_000
LANES = 50
SOURCE, TYPE = "wizehire", "order.created"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- the scratch database ------------------------------------------------------------------------


async def _admin(admin_dsn: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database(admin_url: str) -> tuple[str, str]:
    name = f"wizesync_drain_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_admin(plain_dsn(admin_url), f'CREATE DATABASE "{name}"'))
    url = with_database(admin_url, name, "postgresql+asyncpg")
    from wizesync.db.migrate import upgrade_head

    upgrade_head(url)
    return name, url


def drop_database(admin_url: str, name: str) -> None:
    asyncio.run(_admin(plain_dsn(admin_url), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


QUEUE_SQL = """
INSERT INTO inbox_events (source, event_id, type, ordering_key, status, attempts, replay_base,
                          next_attempt_at, received_at, updated_at, raw_body, payload, lane,
                          head, stalled_attempts)
SELECT '{source}', '{prefix}' || i, '{type}', {key}, 'queued', 0, 0,
       now(), now(), now(), convert_to('{{}}', 'UTF8'), jsonb_build_object('n', i), {lane},
       false, 0
FROM generate_series({first}, {last}) AS i ORDER BY i
"""


AUTOVACUUM = False  # --autovacuum: leave it on, as in production


async def _queue(dsn: str, statements: list[str]) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        for table in () if AUTOVACUUM else ("inbox_events", "event_attempts", "inbox_lanes"):
            await conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        for sql in statements:  # each its own transaction
            await conn.execute(sql)
    finally:
        await conn.close()


def queue_backlog(url: str, size: int) -> None:
    """`size` events: every 5th on one of HOT_KEYS keys, the rest on keys of ~4 events."""
    small_keys = max(1, size * 4 // 5 // 4)
    key = (
        f"CASE WHEN i % 5 = 0 THEN 'hot:' || ((i / 5) % {HOT_KEYS}) "
        f"ELSE 'k:' || (i % {small_keys}) END"
    )
    # In chunks, each its own transaction: storing an event takes a lock on its key's line
    # until commit, and one transaction holding 40,000 keys' locks would exhaust PostgreSQL's
    # lock table (webhooks store one event per transaction).
    statements = [
        QUEUE_SQL.format(
            source=SOURCE,
            type=TYPE,
            prefix="drain_",
            key=key,
            lane=f"'location:L' || (i % {LANES})",
            first=first,
            last=min(size, first + CHUNK - 1),
        )
        for first in range(1, size + 1, CHUNK)
    ]
    asyncio.run(_queue(plain_dsn(url), statements))


def queue_fairness(url: str, burst: int) -> None:
    statements = [
        QUEUE_SQL.format(
            source=SOURCE,
            type=TYPE,
            prefix="burst_",
            key="'b:' || i",
            lane="'location:BURST'",
            first=first,
            last=min(burst, first + CHUNK - 1),
        )
        for first in range(1, burst + 1, CHUNK)
    ]
    statements.append(
        QUEUE_SQL.format(
            source=SOURCE,
            type=TYPE,
            prefix="single_",
            key="'s:1'",
            lane="'location:OTHER'",
            first=1,
            last=1,
        )
    )
    asyncio.run(_queue(plain_dsn(url), statements))


# --- a worker process -----------------------------------------------------------------------------


def worker_process(database_url: str, record: Path, concurrency: int) -> None:
    """Runs in a child: wait for 'go' on stdin, drain until SIGTERM, write the records."""
    import logging

    from wizesync.config import Settings
    from wizesync.db.engine import create_engine, create_sessionmaker
    from wizesync.inbox.context import EventContext
    from wizesync.inbox.registry import HandlerRegistry
    from wizesync.inbox.worker import Worker

    logging.basicConfig(level=logging.WARNING)
    records: list[str] = []

    async def handler(ctx: EventContext) -> None:
        start = time.time()
        await asyncio.sleep(0)  # an await, as a real handler has: overlapping runs would show
        records.append(
            f"{ctx.event.id} {ctx.event.ordering_key} {ctx.event.event_id} "
            f"{start:.6f} {time.time():.6f}"
        )

    async def main() -> None:
        settings = Settings(
            database_url=database_url, worker_concurrency=concurrency, log_level="WARNING"
        )
        engine = create_engine(settings.database_url)
        registry = HandlerRegistry()
        registry.add(SOURCE, TYPE, handler)
        worker = Worker(
            settings=settings, sessionmaker=create_sessionmaker(engine), registry=registry
        )
        loop = asyncio.get_running_loop()
        print("ready", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        done = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, done.set)
        task = worker.start()
        await done.wait()
        await worker.stop(grace_seconds=5)
        await task
        await engine.dispose()

    profile = os.environ.get("DRAIN_PROFILE")  # a path: cProfile stats of this worker process
    if profile:
        import cProfile

        cProfile.runctx("asyncio.run(main())", globals(), locals(), f"{profile}.{os.getpid()}")
    else:
        asyncio.run(main())
    record.write_text("\n".join(records) + ("\n" if records else ""))


# --- one drain ------------------------------------------------------------------------------------


class _Poll:
    """Whether anything is still pending, asked every 0.2 s on one connection kept open (a new
    backend per poll would cost PostgreSQL more than the question), by index: with statistics
    never refreshed the planner would otherwise scan the whole, growing table each time, and
    that scan, not the queue, would set the pace of a large drain."""

    def __init__(self, dsn: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn = self.loop.run_until_complete(self._connect(dsn))

    @staticmethod
    async def _connect(dsn: str) -> Any:
        import asyncpg

        conn = await asyncpg.connect(dsn, timeout=5)
        await conn.execute("SET enable_seqscan = off")
        return conn

    def pending(self) -> bool:
        return bool(
            self.loop.run_until_complete(
                self.conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM inbox_events "
                    "WHERE status IN ('queued', 'retry', 'running'))"
                )
            )
        )

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


def drain(
    admin_url: str,
    db_name: str,
    url: str,
    workers: int,
    concurrency: int,
    workdir: Path,
    timeout: float,
) -> dict[str, Any]:
    env = dict(os.environ)
    procs, records = [], []
    for n in range(workers):
        record = workdir / f"{db_name}.{n}.rec"
        records.append(record)
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "--worker-process", url, str(record), str(concurrency)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    load_start = load_average()
    pg_before = backend_cpu(plain_dsn(admin_url), db_name)
    # From "go" on: the processes' start-up (imports, connections) is not the queue's cost.
    cpu_before = sum(process_cpu_seconds(proc.pid) for proc in procs)
    go = time.time()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    poll = _Poll(plain_dsn(url))
    deadline = time.monotonic() + timeout
    try:
        while poll.pending():
            if time.monotonic() > deadline:
                raise RuntimeError("the queue did not drain in time")
            time.sleep(0.2)
    finally:
        poll.close()
    pg_after = backend_cpu(plain_dsn(admin_url), db_name)
    worker_cpu = sum(process_cpu_seconds(proc.pid) for proc in procs) - cpu_before
    load_end = load_average()
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait()
        if proc.returncode != 0:
            raise RuntimeError(f"a worker process exited with {proc.returncode}")
    runs = [line.split() for record in records for line in record.read_text().splitlines()]
    last_end = max(float(run[4]) for run in runs)
    ends = sorted(float(run[4]) for run in runs)
    return {
        "runs": runs,
        "seconds": last_end - go,
        # The hot keys' lines run one event at a time: when the rest was done shows whether
        # the end of a drain waited for them.
        "half_s": ends[len(ends) // 2] - go,
        "last_other_s": max(float(run[4]) for run in runs if not run[1].startswith("hot:")) - go,
        "worker_cpu": worker_cpu,
        "pg_cpu": cpu_delta(pg_before, pg_after),
        "load": f"{load_start} -> {load_end}",
    }


def check_order(runs: list[list[str]], expected: int) -> list[str]:
    """Problems found: an event not run exactly once, a key run out of order or overlapping."""
    problems = []
    seen = defaultdict(int)
    by_key: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for inbox_id, key, _event_id, start, end in runs:
        seen[int(inbox_id)] += 1
        by_key[key].append((float(start), float(end), int(inbox_id)))
    if len(seen) != expected:
        problems.append(f"{len(seen)} events ran, {expected} queued")
    twice = [i for i, n in seen.items() if n != 1]
    if twice:
        problems.append(f"{len(twice)} events ran more than once, e.g. {twice[:5]}")
    for key, key_runs in by_key.items():
        key_runs.sort()
        ids = [run[2] for run in key_runs]
        if ids != sorted(ids):
            problems.append(f"key {key} ran out of id order")
        for before, after in itertools.pairwise(key_runs):
            if after[0] < before[1]:
                problems.append(f"key {key}: {after[2]} started before {before[2]} ended")
                break
    return problems


def run_backlogs(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    rows = []
    for size in args.sizes:
        for workers in args.workers:
            log(f"{size} events, {workers} worker process(es): queueing")
            name, url = create_database(args.postgres_url)
            try:
                started = time.monotonic()
                queue_backlog(url, size)
                queued_s = time.monotonic() - started
                log(f"queued in {queued_s:.1f} s; draining (load {load_average()})")
                result = drain(
                    args.postgres_url, name, url, workers, args.concurrency, workdir, args.timeout
                )
            finally:
                drop_database(args.postgres_url, name)
            problems = check_order(result.pop("runs"), size)
            row = {
                "events": size,
                "workers": workers,
                "queue_s": round(queued_s, 1),
                "drain_s": round(result["seconds"], 2),
                "half_done_s": round(result["half_s"], 2),
                "others_done_s": round(result["last_other_s"], 2),
                "events_per_s": round(size / result["seconds"]),
                "wall_us_per_event": round(result["seconds"] / size * 1e6, 1),
                "worker_cpu_us_per_event": round(result["worker_cpu"] / size * 1e6, 1),
                "pg_cpu_us_per_event": round(result["pg_cpu"] / size * 1e6, 1),
                "load": result["load"],
                "order_problems": problems,
            }
            log(json.dumps(row))
            rows.append(row)
    return rows


def run_fairness(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    name, url = create_database(args.postgres_url)
    try:
        queue_fairness(url, args.burst)
        result = drain(args.postgres_url, name, url, 1, args.concurrency, workdir, args.timeout)
    finally:
        drop_database(args.postgres_url, name)
    runs = result["runs"]
    go = min(float(run[3]) for run in runs)
    single = [run for run in runs if run[2].startswith("single_")]
    burst_end = max(float(run[4]) for run in runs if run[2].startswith("burst_"))
    burst_before = sum(
        1 for run in runs if run[2].startswith("burst_") and float(run[3]) < float(single[0][3])
    )
    row = {
        "burst": args.burst,
        "single_waited_ms": round((float(single[0][3]) - go) * 1000, 1),
        "burst_events_before_it": burst_before,
        "burst_took_s": round(burst_end - go, 2),
        "load": result["load"],
    }
    log(json.dumps(row))
    return row


def report(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| events | worker processes | drain s (half done; all but hot keys done) | events/s "
        "| wall us/event | worker CPU us/event | PostgreSQL CPU us/event "
        "| load (1/5/15 min) start -> end | order |",
        "|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        order = "kept" if not r["order_problems"] else "; ".join(r["order_problems"])
        lines.append(
            f"| {r['events']:,} | {r['workers']} | {r['drain_s']} "
            f"({r['half_done_s']}; {r['others_done_s']}) | "
            f"{r['events_per_s']:,} | {r['wall_us_per_event']} | "
            f"{r['worker_cpu_us_per_event']} | {r['pg_cpu_us_per_event']} | "
            f"{r['load']} | {order} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="wizesync drain benchmark (see the docstring)")
    p.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "WIZESYNC_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    p.add_argument(
        "--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[10_000, 50_000]
    )
    p.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4])
    p.add_argument("--concurrency", type=int, default=32, help="WORKER_CONCURRENCY per process")
    p.add_argument("--timeout", type=float, default=1800.0, help="per drain, seconds")
    p.add_argument("--fairness", action="store_true", help="the fairness run only")
    p.add_argument(
        "--autovacuum",
        action="store_true",
        help="leave autovacuum on (default: off, statistics never refreshed)",
    )
    p.add_argument("--burst", type=int, default=10_000)
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--worker-process":
        worker_process(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]))
        return 0
    args = parse_args(argv)
    global AUTOVACUUM
    AUTOVACUUM = args.autovacuum
    with tempfile.TemporaryDirectory(prefix="wizesync_drain_") as tmp:
        if args.fairness:
            out: Any = run_fairness(args, Path(tmp))
            print(json.dumps(out, indent=2))
        else:
            out = run_backlogs(args, Path(tmp))
            print(report(out))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0 if args.fairness or not any(r["order_problems"] for r in out) else 1


if __name__ == "__main__":
    sys.exit(main())
