"""How much of GHL's per-location budget `DbRateLimiter` uses, and whether it ever gets a 429.

Starts a fake GHL endpoint that counts arrivals in a strict sliding window (100 per 10 s by
default), answers with GHL's rate-limit headers and a real 429 past the limit. Then several
processes each make their share of the calls for ONE location, all through `DbRateLimiter` on a
shared database (acquire, GET, observe), as wizesync's workers would.

Reported: 429s (goal 0), and the fraction of the budget used: the fastest any client could
finish N calls is `(N - limit) / limit * window` after the first (a full window at once, then one
window per `limit` more); the figure is that ideal over the time really taken (goal >= 0.9).

`--sandbox` runs the same measure against the real thing: `wizesync sandbox` as its own process
(GHL's limit, 100 per 10 s per location, as a sliding window, with its rate-limit headers), and
each process calls it through wizesync's own `GhlClient` (Private Integration Token, the shared
`DbRateLimiter`, `list_whitelabel_providers`). 429s are the sandbox's own count, so one that the
client waited out and retried still shows. Times are when each call's answer came back.

    .venv/bin/python benchmarks/ghl_ratelimit.py                       # SQLite, temp file
    .venv/bin/python benchmarks/ghl_ratelimit.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/DB
    .venv/bin/python benchmarks/ghl_ratelimit.py --sandbox --database-url postgresql+asyncpg://...
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


# --- the fake GHL endpoint ---------------------------------------------------------------------


class SlidingWindowGhl(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, limit: int, window: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.limit, self.window = limit, window
        self.arrivals: collections.deque[float] = collections.deque()
        self.accepted = 0
        self.rejected = 0
        self.lock = threading.Lock()

    def admit(self) -> tuple[bool, int]:
        with self.lock:
            now = time.monotonic()
            while self.arrivals and self.arrivals[0] <= now - self.window:
                self.arrivals.popleft()
            if len(self.arrivals) >= self.limit:
                self.rejected += 1
                return False, 0
            self.arrivals.append(now)
            self.accepted += 1
            return True, self.limit - len(self.arrivals)


class _Handler(BaseHTTPRequestHandler):
    server: SlidingWindowGhl
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        ok, remaining = self.server.admit()
        body = b'{"data": [], "totalCount": 0}' if ok else b'{"statusCode": 429}'
        self.send_response(200 if ok else 429)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-RateLimit-Max", str(self.server.limit))
        self.send_header("X-RateLimit-Remaining", str(remaining))
        self.send_header("X-RateLimit-Interval-Milliseconds", str(int(self.server.window * 1000)))
        self.send_header("X-RateLimit-Limit-Daily", "200000")
        self.send_header("X-RateLimit-Daily-Remaining", "150000")
        self.end_headers()
        self.wfile.write(body)


# --- one client process -------------------------------------------------------------------------


async def child(args: argparse.Namespace) -> None:
    import httpx

    from wizesync.config import Settings
    from wizesync.db.engine import create_engine, create_sessionmaker
    from wizesync.ghl.ratelimit import DbRateLimiter

    settings = Settings(
        _env_file=None,
        database_url=args.database_url,  # type: ignore[call-arg]
        ghl_rate_limit_max=args.limit,
        ghl_rate_limit_window_seconds=args.window,
    )
    engine = create_engine(args.database_url, pool_size=5)
    limiter = DbRateLimiter(create_sessionmaker(engine), settings)
    results: list[tuple[float, int]] = []
    todo = list(range(args.calls))
    async with httpx.AsyncClient(timeout=30) as http:
        await http.get(args.url)  # warm the connection pool; not counted by the parent
        print("ready", flush=True)
        while not Path(args.go).exists():
            await asyncio.sleep(0.005)

        async def caller() -> None:
            while todo:
                todo.pop()
                await limiter.acquire(args.location)
                sent = time.time()
                response = await http.get(args.url)
                await limiter.observe(args.location, response.status_code, response.headers)
                results.append((sent, response.status_code))

        await asyncio.gather(*(caller() for _ in range(args.concurrency)))
    await limiter.close()
    await engine.dispose()
    Path(args.out).write_text(json.dumps(results))


async def sandbox_child(args: argparse.Namespace) -> None:
    """One worker-like process against `wizesync sandbox`: GhlClient + DbRateLimiter."""
    import httpx
    from pydantic import SecretStr

    from wizesync.config import Settings
    from wizesync.db.engine import create_engine, create_sessionmaker
    from wizesync.ghl.client import GhlClient
    from wizesync.ghl.limits import StaticTokenProvider
    from wizesync.ghl.ratelimit import DbRateLimiter

    settings = Settings(
        _env_file=None,
        database_url=args.database_url,  # type: ignore[call-arg]
        ghl_rate_limit_max=args.limit,
        ghl_rate_limit_window_seconds=args.window,
    )
    engine = create_engine(args.database_url, pool_size=args.concurrency + 2)
    limiter = DbRateLimiter(create_sessionmaker(engine), settings)
    results: list[tuple[float, str]] = []
    todo = list(range(args.calls))
    async with httpx.AsyncClient(timeout=30) as http:
        ghl = GhlClient(
            http,
            base_url=args.url,
            version="2021-07-28",
            tokens=StaticTokenProvider(SecretStr(args.token), args.location),
            limiter=limiter,
            max_rate_limit_wait=60.0,
        )
        await http.get(args.url.removesuffix("/ghl") + "/health")  # warm the pool, not counted
        print("ready", flush=True)
        while not Path(args.go).exists():
            await asyncio.sleep(0.005)

        async def caller() -> None:
            while todo:
                todo.pop()
                try:
                    await ghl.list_whitelabel_providers(args.location)
                    outcome = "ok"
                except Exception as exc:
                    outcome = type(exc).__name__
                results.append((time.time(), outcome))

        await asyncio.gather(*(caller() for _ in range(args.concurrency)))
    await limiter.close()
    await engine.dispose()
    Path(args.out).write_text(json.dumps(results))


def start_sandbox(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`wizesync sandbox` on a free port, no webhooks; returns it and its base URL."""
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GHL_", "WIZEHIRE_"))}
    env["PYTHONPATH"] = str(REPO / "src")
    log = (workdir / "sandbox.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wizesync",
            "sandbox",
            "--port",
            str(port),
            "--service-url",
            "",
            "--webhooks",
            "off",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(base + "/health", timeout=2):
                return proc, base
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit(f"the sandbox did not start; see {workdir}/sandbox.log") from None
            time.sleep(0.2)


def sandbox_state(base: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(base + "/_sandbox/state", timeout=10) as answer:
        return json.loads(answer.read())


def main_sandbox(args: argparse.Namespace, workdir: Path, database_url: str) -> None:
    from wizesync_sandbox.defaults import DEFAULT_LOCATION_ID, DEFAULT_PRIVATE_TOKEN

    if (args.limit, args.window) != (100, 10.0):
        raise SystemExit("--sandbox measures GHL's own limit: leave --limit and --window alone")
    sandbox, base = start_sandbox(workdir)
    go = workdir / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    share = [
        args.calls // args.processes + (n < args.calls % args.processes)
        for n in range(args.processes)
    ]
    procs = []
    try:
        for n, calls in enumerate(share):
            out = workdir / f"out{n}.json"
            procs.append(
                (
                    subprocess.Popen(
                        [
                            sys.executable,
                            __file__,
                            "--child-sandbox",
                            "--database-url",
                            database_url,
                            "--calls",
                            str(calls),
                            "--concurrency",
                            str(args.concurrency),
                            "--url",
                            f"{base}/ghl",
                            "--token",
                            DEFAULT_PRIVATE_TOKEN,
                            "--location",
                            DEFAULT_LOCATION_ID,
                            "--go",
                            str(go),
                            "--out",
                            str(out),
                        ],
                        env=env,
                        stdout=subprocess.PIPE,
                        text=True,
                    ),
                    out,
                )
            )
        for proc, _ in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        go.touch()
        for proc, _ in procs:
            proc.wait()
        budget = sandbox_state(base)["rate_limits"].get(DEFAULT_LOCATION_ID, {})
    finally:
        sandbox.terminate()
        sandbox.wait(30)
    results = [r for _, out in procs for r in json.loads(out.read_text())]
    done = sorted(t for t, _ in results)
    taken = done[-1] - done[0]
    ideal = max(0.0, (len(done) - args.limit) / args.limit * args.window)
    used = ideal / taken if taken > 0 else 1.0
    outcomes = collections.Counter(outcome for _, outcome in results)
    print("target           wizesync sandbox (separate process), GhlClient + DbRateLimiter")
    print(f"database         {database_url.split('://')[0]}")
    print(
        f"calls            {len(results)} from {args.processes} processes x "
        f"{args.concurrency} concurrent, one location"
    )
    print(f"limit            {args.limit} per {args.window:g} s (the sandbox's sliding window)")
    print(f"outcomes         {dict(outcomes)}")
    print(
        f"429s             {budget.get('rejected')} (the sandbox's count; requests it saw: "
        f"{budget.get('today')})"
    )
    print(f"first->last      {taken:.2f} s (ideal {ideal:.2f} s)")
    print(f"budget used      {used:.3f} of what the limit allows")


# --- the run ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--calls", type=int, default=300, help="calls in total")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=10, help="concurrent calls per process")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--window", type=float, default=10.0)
    # child mode
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--location", help=argparse.SUPPRESS)
    parser.add_argument("--go", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="measure against `wizesync sandbox` through GhlClient",
    )
    parser.add_argument("--child-sandbox", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args))
        return
    if args.child_sandbox:
        asyncio.run(sandbox_child(args))
        return

    from wizesync.db.migrate import upgrade_head

    workdir = Path(tempfile.mkdtemp(prefix="ghl-ratelimit-"))
    database_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    upgrade_head(database_url)
    if args.sandbox:
        main_sandbox(args, workdir, database_url)
        return
    server = SlidingWindowGhl(args.limit, args.window)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/payments/orders"
    location = "loc_bench_" + uuid.uuid4().hex[:14]
    go = workdir / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    share = [
        args.calls // args.processes + (n < args.calls % args.processes)
        for n in range(args.processes)
    ]
    procs = []
    for n, calls in enumerate(share):
        out = workdir / f"out{n}.json"
        procs.append(
            (
                subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        "--database-url",
                        database_url,
                        "--calls",
                        str(calls),
                        "--concurrency",
                        str(args.concurrency),
                        "--limit",
                        str(args.limit),
                        "--window",
                        str(args.window),
                        "--url",
                        url,
                        "--location",
                        location,
                        "--go",
                        str(go),
                        "--out",
                        str(out),
                    ],
                    env=env,
                    stdout=subprocess.PIPE,
                    text=True,
                ),
                out,
            )
        )
    for proc, _ in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    warmups = server.accepted
    server.accepted = 0
    with server.lock:
        server.arrivals.clear()
    go.touch()
    for proc, _ in procs:
        proc.wait()
    results = [r for _, out in procs for r in json.loads(out.read_text())]
    sends = sorted(t for t, _ in results)
    taken = sends[-1] - sends[0]
    ideal = max(0.0, (len(sends) - args.limit) / args.limit * args.window)
    used = ideal / taken if taken > 0 else 1.0
    statuses = collections.Counter(status for _, status in results)
    print(f"database         {database_url.split('://')[0]}")
    print(
        f"calls            {len(results)} from {args.processes} processes x "
        f"{args.concurrency} concurrent (warm-up requests excluded: {warmups})"
    )
    print(f"limit            {args.limit} per {args.window:g} s (strict sliding window)")
    print(f"statuses         {dict(statuses)}")
    print(f"429s             {statuses.get(429, 0)} (server counted {server.rejected})")
    print(f"first->last send {taken:.2f} s (ideal {ideal:.2f} s)")
    print(f"budget used      {used:.3f} of what the limit allows")
    server.shutdown()


if __name__ == "__main__":
    main()
