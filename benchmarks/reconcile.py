"""Reconciliation at scale: wall time against the floor GHL's rate limit sets, peak RSS, calls per
order, for a location holding N orders (10,000 and 100,000 by default).

Three processes per size, so each measures only itself:
- the sandbox (`serve-sandbox`): fake GHL + fake Wizehire over loopback HTTP, seeded directly in
  its state with N orders on one location (each with its transaction, fulfilled, and the same
  order on Wizehire's side with its `sync`), plus planted disagreements (1 % amount mismatch,
  1 % unfulfilled, 1 % Wizehire-only, 0.1 % GHL-only);
- the reconciliation (`run`): the sync records seeded in the database first (untimed), then one
  `Reconciler` run with the production budget (`DbRateLimiter` shared through the database, the
  run's `ShareLimiter` leaving RECONCILE_GHL_RESERVE of every window to the live sync);
- this driver, which starts both and prints/writes the figures.

The floor: GHL calls the run made / (GHL_RATE_LIMIT_MAX per window) -> seconds, i.e. at GHL's
100 per 10 s, calls / 10 per second. The share floor: the same calls at the run's share of the
budget (GHL_RATE_LIMIT_MAX - RECONCILE_GHL_RESERVE per window, 90 per 10 s by default), the
best a run that leaves the live sync its reserve can do. `--limit-scale S` divides the
sandbox's window AND the service's window by S (the floor shrinks by S too), for quick looks;
the figures in docs/RECONCILIATION.md say which scale they ran at.

The sandbox's list endpoints scan and sort every document on every page (fine for tests, O(N) per
page). In the benchmark's sandbox process they are replaced by an index answering the same pages
(same order, same filters, same totals), so what is measured is the service, not the fake's scan.

    .venv/bin/python benchmarks/reconcile.py                      # 10k and 100k, ~6 minutes
    .venv/bin/python benchmarks/reconcile.py --orders 10000       # one size
    .venv/bin/python benchmarks/reconcile.py --database-url postgresql+asyncpg://...
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

LOCATION = "SandboxLocation00001"
# The driver's start, handed to both children (`--epoch`): they must agree on the window.
EPOCH = datetime.fromisoformat(
    os.environ.get("RECONCILE_BENCH_EPOCH") or datetime.now(UTC).replace(microsecond=0).isoformat()
)
SINCE = EPOCH - timedelta(days=2)
UNTIL = EPOCH + timedelta(hours=1)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def kind(i: int) -> str:
    """What order i is: most agree; a few disagree in known ways."""
    if i % 1000 == 3:
        return "ghl_only"
    return {0: "amount", 1: "unfulfilled", 2: "wizehire_only"}.get(i % 100, "agree")


def ghl_id(i: int) -> str:
    return f"{i:024x}"


def wizehire_id(i: int) -> str:
    return f"wh_bench_{i:07d}"


# --- the sandbox process -------------------------------------------------------------------------


def serve_sandbox(orders: int, port: int, limit_scale: float, ready: Path) -> None:
    import uvicorn

    from wizesync_sandbox.core import Sandbox
    from wizesync_sandbox.defaults import BOOST_PRICE_ID, BOOST_PRODUCT_ID
    from wizesync_sandbox.server import create_sandbox_app
    from wizesync_sandbox.settings import SandboxConfig

    _index_sandbox_lists()
    config = SandboxConfig(
        service_url=None,
        webhooks="off",
        ghl_rate_limit_interval_ms=max(1, int(10_000 / limit_scale)),
        ghl_daily_limit=10_000_000,
    )
    sb = Sandbox.build(config)
    app = create_sandbox_app(sandbox=sb, seed=True)
    store = sb.store
    price = (
        dict(store.prices[BOOST_PRICE_ID])
        if BOOST_PRICE_ID in getattr(store, "prices", {})
        else {
            "_id": BOOST_PRICE_ID,
            "amount": 149,
            "currency": "USD",
            "product": BOOST_PRODUCT_ID,
            "type": "one_time",
        }
    )
    for i in range(orders):
        what = kind(i)
        created = SINCE + timedelta(seconds=1 + i)
        if what != "wizehire_only":
            oid = ghl_id(i)
            store.orders[oid] = {
                "_id": oid,
                "altId": LOCATION,
                "altType": "location",
                "locationId": LOCATION,
                "contactId": "c" * 24,
                "currency": "USD",
                "amount": 149,
                "status": "completed",
                "paymentStatus": "paid",
                "liveMode": False,
                "fulfillmentStatus": "unfulfilled" if what == "unfulfilled" else "fulfilled",
                "source": {"type": "funnel", "id": "f" * 24},
                "createdAt": iso(created),
                "updatedAt": iso(created),
                "items": [
                    {
                        "_id": f"i{i:023x}",
                        "name": "Job ad boost",
                        "qty": 1,
                        "price": price,
                        "product": {"_id": BOOST_PRODUCT_ID},
                    }
                ],
            }
            tid = f"{i:023x}t"
            store.transactions[tid] = {
                "_id": tid,
                "altId": LOCATION,
                "altType": "location",
                "contactId": "c" * 24,
                "currency": "USD",
                "amount": 149,
                "amountRefunded": 0,
                "status": "succeeded",
                "liveMode": False,
                "entityType": "order",
                "entityId": oid,
                "entitySourceType": "funnel",
                "createdAt": iso(created),
                "updatedAt": iso(created),
            }
        if what != "ghl_only":
            amount = "150.00" if what == "amount" else "149.00"
            linked = what != "wizehire_only"
            sb.wizehire.put_order(
                {
                    "id": wizehire_id(i),
                    "account_id": "acct_42",
                    "status": "paid",
                    "currency": "USD",
                    "amount": amount,
                    "customer": {"email": f"buyer{i}@example.com"},
                    "items": [
                        {
                            "sku": "JOB-BOOST-30",
                            "name": "Job ad boost",
                            "quantity": 1,
                            "unit_amount": amount,
                        }
                    ],
                    "ghl_location_id": LOCATION if linked else None,
                    "ghl_order_id": ghl_id(i) if linked else None,
                    "created_at": iso(created),
                    "metadata": {},
                    "ghl_sync": {
                        "payment_status": "paid",
                        "amount_refunded": "0.00",
                        "ghl_order_id": ghl_id(i),
                        "ghl_location_id": LOCATION,
                    }
                    if linked
                    else None,
                }
            )
    ready.write_text("ready")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _index_sandbox_lists() -> None:
    """Same answers as the sandbox's `_filtered`, without a full scan and sort per page."""
    from wizesync_sandbox import ghl_payments_routes as routes
    from wizesync_sandbox.clock import parse_moment

    original = routes._filtered
    index: dict[int, tuple[int, list[Any], list[float]]] = {}
    answers: dict[tuple[Any, ...], list[Any]] = {}

    def filtered(docs: Any, caller: Any, filters: dict[str, Any]) -> list[Any]:
        mapping = getattr(docs, "mapping", None)
        if not mapping:
            return original(docs, caller, filters)
        # `mapping` is a fresh proxy each call: the collection is known by its first document.
        collection = id(next(iter(mapping.values())))
        key = (
            collection,
            len(mapping),
            caller.location_id,
            caller.query("startAt"),
            caller.query("endAt"),
            caller.query("paymentMode"),
            tuple((n, caller.query(n)) for n in sorted(filters) if caller.query(n)),
        )
        if key in answers:
            return answers[key]
        entry = index.get(collection)
        if entry is None or entry[0] != len(mapping):
            rows = sorted(mapping.values(), key=lambda d: (d["createdAt"], d["_id"]), reverse=True)
            times = [-parse_moment(d["createdAt"]).timestamp() for d in rows]
            entry = index[collection] = (len(mapping), rows, times)
        _, rows, times = entry
        start = parse_moment(caller.query("startAt") or "")
        end = parse_moment(caller.query("endAt") or "", end_of_day=True)
        lo = bisect.bisect_left(times, -end.timestamp()) if end else 0
        hi = bisect.bisect_right(times, -start.timestamp()) if start else len(rows)
        mode = caller.query("paymentMode")
        out = []
        for doc in rows[lo:hi]:
            if (doc.get("altId") or doc.get("locationId")) != caller.location_id:
                continue
            if mode in ("live", "test") and bool(doc.get("liveMode")) != (mode == "live"):
                continue
            if all(
                fn(doc, caller.query(name) or "")
                for name, fn in filters.items()
                if caller.query(name)
            ):
                out.append(doc)
        answers.clear()
        answers[key] = out
        return out

    routes._filtered = filtered


# --- the reconciliation process ------------------------------------------------------------------


async def run_reconcile(
    database_url: str, sandbox: str, orders: int, limit_scale: float, reserve: int
) -> dict[str, Any]:
    import httpx

    from wizesync.config import Settings
    from wizesync.db.engine import create_engine, create_sessionmaker
    from wizesync.ghl.limits import StaticTokenProvider
    from wizesync.ghl.ratelimit import DbRateLimiter
    from wizesync.mapping import Locations, Mapping, Product
    from wizesync.reconcile.runs import Reconciler, Window
    from wizesync.wizehire.auth import ApiKeyAuth
    from wizesync.wizehire.client import WizehireClient
    from wizesync_sandbox.defaults import (
        BOOST_PRICE_ID,
        BOOST_PRODUCT_ID,
        DEFAULT_PRIVATE_TOKEN,
    )

    window_seconds = 10.0 / limit_scale
    settings = Settings(
        wizesync_env="test",
        database_url=database_url,
        _env_file=None,
        ghl_api_url=f"{sandbox}/ghl",
        wizehire_api_url=f"{sandbox}/wizehire",
        wizehire_api_key="k",
        ghl_location_id=LOCATION,
        ghl_rate_limit_window_seconds=window_seconds,
        reconcile_ghl_reserve=reserve,
    )  # type: ignore[call-arg]
    engine = create_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    mapping = Mapping(
        locations=Locations(default=LOCATION),
        products={"JOB-BOOST-30": Product(price_id=BOOST_PRICE_ID, product_id=BOOST_PRODUCT_ID)},
    )
    async with httpx.AsyncClient(timeout=60) as http:
        limiter = DbRateLimiter(sessionmaker, settings)

        class Services:
            pass

        services = Services()
        services.tokens = StaticTokenProvider(DEFAULT_PRIVATE_TOKEN)  # type: ignore[attr-defined]
        services.limiter = limiter  # type: ignore[attr-defined]
        services.mapping = mapping  # type: ignore[attr-defined]
        services.slack = None  # type: ignore[attr-defined]
        services.wizehire = WizehireClient(  # type: ignore[attr-defined]
            http, base_url=f"{sandbox}/wizehire", auth=ApiKeyAuth("k")
        )
        samples: list[tuple[float, int]] = []
        t0 = time.monotonic()

        async def sample_rss() -> None:
            while True:
                samples.append((round(time.monotonic() - t0, 1), _rss_kb()))
                await asyncio.sleep(0.5)

        sampler = asyncio.create_task(sample_rss())
        cpu0 = _cpu_seconds()
        # When each phase was first and last heard of (seconds from the start): where time goes.
        phases: dict[str, list[float]] = {}

        def progress(phase: str, done: int, total: int | None) -> None:
            now = round(time.monotonic() - t0, 1)
            phases.setdefault(phase, [now, now])[1] = now

        reconciler = Reconciler(
            settings=settings,
            sessionmaker=sessionmaker,
            services=services,
            http=http,
            progress=progress,
        )
        sent: list[float] = []  # when each GHL call was let through
        acquire = reconciler.limiter.acquire

        async def timed_acquire(location_id: str) -> None:
            await acquire(location_id)
            sent.append(time.monotonic() - t0)

        reconciler.limiter.acquire = timed_acquire  # type: ignore[method-assign]
        run_id = await reconciler.start(trigger="cli", window=Window(SINCE, UNTIL), heal=False)
        run = await reconciler.execute(run_id, announce=False)
        wall = time.monotonic() - t0
        cpu = _cpu_seconds() - cpu0
        sampler.cancel()
        await limiter.close()
    await engine.dispose()
    assert run is not None and run.status == "done", run and run.error
    calls = reconciler.limiter.total_calls
    # Two floors: the (GHL's whole budget, 100 per 10 s) and the one a run can reach,
    # since it leaves `reserve` requests of every window to the live sync.
    per_second = settings.ghl_rate_limit_max / window_seconds
    floor = calls / per_second
    share_floor = calls / (reconciler.limiter.share / window_seconds)
    return {
        "orders": orders,
        "limit_scale": limit_scale,
        "reserve": reserve,
        "wall_seconds": round(wall, 1),
        "ghl_calls": calls,
        "floor_seconds": round(floor, 1),
        "wall_over_floor": round(wall / floor, 3),
        "share_floor_seconds": round(share_floor, 1),
        "wall_over_share_floor": round(wall / share_floor, 3),
        "calls_per_order": round(calls / orders, 4),
        "peak_rss_mb": round(_peak_rss_kb() / 1024, 1),
        "run_rss_max_mb": round(max(kb for _, kb in samples) / 1024, 1),
        # CPU the run's own process used (user + system): unlike wall time, not inflated by
        # other load on the machine; the database server's CPU is not in it.
        "cpu_seconds": round(cpu, 1),
        "load_average": round(os.getloadavg()[0], 1),
        "phases": phases,
        "last_ghl_call_seconds": round(max(sent, default=0.0), 1),
        "rss_mb_samples": [
            (t, round(kb / 1024, 1)) for t, kb in samples[:: max(1, len(samples) // 12)]
        ],
        "counts": run.counts,
    }


async def seed_sync_records(database_url: str, orders: int) -> None:
    """The sync records of the orders the sync linked (by the driver: the run's process must
    not carry the seed in its memory figures)."""
    from sqlalchemy import insert

    from wizesync.db.engine import create_engine, create_sessionmaker
    from wizesync.db.sync_models import SyncOrder

    engine = create_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    rows = [
        {
            "wizehire_order_id": wizehire_id(i),
            "account_id": "acct_42",
            "ghl_location_id": LOCATION,
            "wizehire_status": "paid",
            "order_snapshot": {},
            "currency": "USD",
            "amount": 149,
            "ghl_order_id": ghl_id(i),
            "ghl_order_source": "explicit",
            "payment_status": "paid",
        }
        for i in range(orders)
        if kind(i) in ("agree", "amount", "unfulfilled")
    ]
    async with sessionmaker.begin() as session:
        for start in range(0, len(rows), 2000):
            await session.execute(insert(SyncOrder), rows[start : start + 2000])
    await engine.dispose()


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_kb() -> int:
    return _status_kb("VmRSS")


def _peak_rss_kb() -> int:
    return _status_kb("VmHWM")


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


# --- the driver ----------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_one(
    orders: int, database_url: str | None, limit_scale: float, reserve: int, workdir: Path
) -> dict[str, Any]:
    from wizesync.db.migrate import upgrade_head

    url = database_url or f"sqlite+aiosqlite:///{workdir / f'reconcile-{orders}.db'}"
    upgrade_head(url)
    asyncio.run(seed_sync_records(url, orders))
    port = _free_port()
    ready = workdir / f"sandbox-{orders}.ready"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "RECONCILE_BENCH_EPOCH": EPOCH.isoformat(),
    }
    sandbox = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "serve-sandbox",
            "--orders",
            str(orders),
            "--port",
            str(port),
            "--limit-scale",
            str(limit_scale),
            "--ready",
            str(ready),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "sandbox.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + 600
        while not ready.exists():
            if sandbox.poll() is not None or time.monotonic() > deadline:
                raise SystemExit((workdir / "sandbox.log").read_text()[-3000:])
            time.sleep(0.5)
        time.sleep(1.0)  # uvicorn binds after the seed
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "run",
                "--orders",
                str(orders),
                "--database-url",
                url,
                "--sandbox",
                f"http://127.0.0.1:{port}",
                "--limit-scale",
                str(limit_scale),
                "--reserve",
                str(reserve),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        if out.returncode != 0:
            raise SystemExit(out.stderr[-5000:])
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        sandbox.terminate()
        sandbox.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve-sandbox")
    serve.add_argument("--orders", type=int, required=True)
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--limit-scale", type=float, default=1.0)
    serve.add_argument("--ready", type=Path, required=True)
    run = sub.add_parser("run")
    run.add_argument("--orders", type=int, required=True)
    run.add_argument("--database-url", required=True)
    run.add_argument("--sandbox", required=True)
    run.add_argument("--limit-scale", type=float, default=1.0)
    run.add_argument("--reserve", type=int, default=10)
    parser.add_argument("--orders", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--database-url", default=None, help="default: a fresh SQLite file per size"
    )
    parser.add_argument("--limit-scale", type=float, default=1.0)
    parser.add_argument(
        "--reserve",
        type=int,
        default=10,
        help="RECONCILE_GHL_RESERVE: requests per window left to the live sync",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()
    if args.command == "serve-sandbox":
        serve_sandbox(args.orders, args.port, args.limit_scale, args.ready)
        return
    if args.command == "run":
        result = asyncio.run(
            run_reconcile(
                args.database_url, args.sandbox, args.orders, args.limit_scale, args.reserve
            )
        )
        print(json.dumps(result))
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="wizesync-reconcile-bench-") as tmp:
        for orders in args.orders:
            result = bench_one(orders, args.database_url, args.limit_scale, args.reserve, Path(tmp))
            results.append(result)
            print(json.dumps(result), flush=True)
    print()
    print(
        f"{'orders':>8} {'calls':>6} {'calls/order':>11} {'floor s':>8} {'wall s':>7} "
        f"{'wall/floor':>10} {'wall/share floor':>16} {'peak RSS MB':>11} {'load':>5}"
    )
    for r in results:
        print(
            f"{r['orders']:>8} {r['ghl_calls']:>6} {r['calls_per_order']:>11} "
            f"{r['floor_seconds']:>8} {r['wall_seconds']:>7} {r['wall_over_floor']:>10} "
            f"{r['wall_over_share_floor']:>16} {r['peak_rss_mb']:>11} {r['load_average']:>5}"
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
