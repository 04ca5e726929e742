"""Ingest benchmark: wizesync's `POST /webhooks/wizehire` against two anchors, in one run.

    .venv/bin/python benchmarks/ingest.py            (or `make bench`)

Starts everything itself and cleans up after itself:
1. a scratch PostgreSQL database (dropped at the end) and a scratch SQLite file;
2. `wizesync migrate`, then `wizesync serve` (one uvicorn process, WORKER=inprocess, the no-op
   handlers of `bench_handlers.py`, so every accepted event is really claimed and run);
3. the anchors of `anchors.py` as their own uvicorn processes: a bare FastAPI endpoint that only
   parses the JSON, and one that adds a single asyncpg `INSERT ... ON CONFLICT DO NOTHING`;
4. per round, a fresh set of correctly signed `order.created` requests (distinct webhook-id and
   body each), built before any timing, replayed from a separate process (wrk when installed,
   else `loadgen.py`) with 32 keep-alive connections, each target in turn, the order rotating
   between rounds; after the service's turn the benchmark waits until its worker has run every
   event, so the next target does not share the CPU with a backlog;
5. the pickup latency: 100 events/s for 10 s, POST -> handler start (the handler logs its start
   time, the load generator its send times; both on this machine's clock).

Only loopback traffic; every phase has a request count and a time limit. Absolute figures depend
on what else runs on the machine: compare the ratios measured within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402  (a sibling module, found through the path set just above)

from wizesync import samples  # noqa: E402
from wizesync.signing import wizehire_headers  # noqa: E402

PATH = "/webhooks/wizehire"
PICKUP_PREFIX = "msg_pickup_"  # bench_handlers logs the start of these events only
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
GOAL_RATIO, GOAL_P99_MS, GOAL_PICKUP_P50_MS = 0.8, 50.0, 20.0
WORKER_MODES = ("inprocess", "off", "process")  # see wizesync_server


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """One target process: a uvicorn app on a loopback port, its output in a log file."""

    key: str
    label: str
    cmd: list[str]
    env: dict[str, str]
    ready_path: str
    workdir: Path
    database_url: str | None = None  # set for wizesync: where to watch its queue drain
    db_name: str | None = None  # its PostgreSQL database, whose backends' CPU is counted
    # How wizesync's events run (`wizesync_server`'s `worker`): "inprocess"; "off", a `wizesync
    # worker` process after the load; "process", one beside the API from the start, its CPU
    # counted as the target's.
    events: str = "inprocess"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None

    @property
    def log_file(self) -> Path:
        return self.workdir / f"{self.key}.log"

    def start(self) -> None:
        cmd = [*self.cmd, "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_file.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=self.workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        if self.events == "process":
            self.worker = self._start_worker()

    def _start_worker(self) -> subprocess.Popen[bytes]:
        with self.log_file.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "wizesync", "worker"],
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}{self.ready_path}"
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited; see {self.log_file}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.label} not ready after {timeout:g} s; see {self.log_file}")

    def cpu_seconds(self) -> float:
        own = process_cpu_seconds(self.proc.pid) if self.proc else 0.0
        return own + (process_cpu_seconds(self.worker.pid) if self.worker else 0.0)

    def drain(self, admin_dsn: str) -> tuple[dict[str, int], float, dict[int, float]]:
        """Wait until every queued event ran. Returns the counts by status, the CPU seconds a
        worker process started after the load used (0.0 otherwise: `cpu_seconds` holds it) and the
        CPU of the database's backends, read before that worker and its connections go away."""
        assert self.database_url is not None
        if self.events != "off":
            counts = wait_drained(self.database_url)
            return counts, 0.0, backend_cpu(admin_dsn, self.db_name)
        worker = self._start_worker()
        try:
            counts = wait_drained(self.database_url)
            return counts, process_cpu_seconds(worker.pid), backend_cpu(admin_dsn, self.db_name)
        finally:
            _stop(worker)

    def stop(self) -> None:
        for proc in (self.worker, self.proc):
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (0 once it is gone), from /proc/PID/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # fields 14 and 15 are utime and stime
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_cpu(admin_dsn: str, db_name: str | None) -> dict[int, float]:
    """CPU used so far by each PostgreSQL backend serving `db_name` (same machine)."""
    if db_name is None:
        return {}

    async def pids() -> list[int]:
        import asyncpg

        conn = await asyncpg.connect(admin_dsn, timeout=5)
        try:
            rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", db_name)
        finally:
            await conn.close()
        return [row["pid"] for row in rows]

    return {pid: process_cpu_seconds(pid) for pid in asyncio.run(pids())}


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """Backends that came and went in between are missed: a steady pool keeps its own."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def base_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "WORKER", "WORKER_HANDLER_MODULES", "LOG_LEVEL")
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def uvicorn_cmd(factory: str) -> list[str]:
    # uvicorn's defaults (uvloop, httptools), as `wizesync serve` runs it; no access log either.
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(HERE),
        "--factory",
        factory,
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def wizesync_server(
    key: str,
    label: str,
    database_url: str,
    workdir: Path,
    secret: str,
    src: Path | None = None,
    worker: str = "inprocess",
) -> Server:
    """`wizesync migrate` then `wizesync serve`; `src` runs another source tree (A/B runs).

    `worker="off"`: the API alone; after its load a `wizesync worker` process runs the events.
    `worker="process"`: the API with WORKER=off and a `wizesync worker` process beside it from
    the start, running the events during the load (the production layout).
    """
    env = base_env(
        DATABASE_URL=database_url,
        WIZESYNC_ENV="development",
        WIZEHIRE_WEBHOOK_SECRET=secret,
        ADMIN_TOKEN=secrets.token_urlsafe(24),
        WORKER="inprocess" if worker == "inprocess" else "off",
        WORKER_HANDLER_MODULES="bench_handlers",
        LOG_LEVEL="INFO",  # the default: one JSON line per event stored and per attempt
        BENCH_PICKUP_LOG=str(workdir / f"{key}.pickup"),
    )
    if src is not None:  # PYTHONPATH comes before the installed (editable) package
        env["PYTHONPATH"] = os.pathsep.join([str(src), env["PYTHONPATH"]])
    migrate = subprocess.run(
        [sys.executable, "-m", "wizesync", "migrate"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if migrate.returncode != 0:
        raise RuntimeError(f"wizesync migrate failed: {migrate.stderr}")
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    return Server(
        key,
        label,
        [sys.executable, "-m", "wizesync", "serve"],
        env,
        "/ready" if worker == "inprocess" else "/health",
        workdir,
        database_url=database_url,
        db_name=url.database if url.get_backend_name() == "postgresql" else None,
        events=worker,
    )


# --- the scratch PostgreSQL database -----------------------------------------------------------


async def _admin(admin_url: str, sql: str) -> Any:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=5)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def plain_dsn(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def with_database(url: str, name: str, driver: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername=driver, database=name).render_as_string(hide_password=False)


# --- requests -----------------------------------------------------------------------------------


def signed_requests(count: int, secret: str, prefix: str) -> list[tuple[str, bytes]]:
    """`count` distinct, correctly signed order.created requests (signed now: 5 minutes fresh)."""
    out = []
    for i in range(count):
        event_id = f"{prefix}{i}"
        body = json.dumps(samples.wizehire_event("order.created"), separators=(",", ":")).encode()
        headers = wizehire_headers(secret, body, event_id=event_id)
        out.append((event_id, loadgen.raw_request(PATH, headers, body)))
    return out


def request_file(workdir: Path, name: str, count: int, secret: str, prefix: str) -> Path:
    file = workdir / f"{name}.req"
    loadgen.write_requests(file, signed_requests(count, secret, prefix))
    return file


# --- the service's queue ---------------------------------------------------------------------


async def _queue_counts(database_url: str) -> dict[str, int]:
    from wizesync.db import inbox_repo
    from wizesync.db.engine import create_engine, create_sessionmaker

    engine = create_engine(database_url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session:
            return await inbox_repo.queue_counts(session)
    finally:
        await engine.dispose()


async def _last_handled_at(database_url: str) -> float | None:
    from sqlalchemy import func, select

    from wizesync.db.engine import create_engine, create_sessionmaker
    from wizesync.db.models import InboxEvent

    engine = create_engine(database_url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session:
            value = (await session.execute(select(func.max(InboxEvent.handled_at)))).scalar()
    finally:
        await engine.dispose()
    return value.timestamp() if value is not None else None


def last_handled_at(database_url: str) -> float | None:
    """When the last event was handled (epoch seconds), from the inbox."""
    return asyncio.run(_last_handled_at(database_url))


def queue_counts(database_url: str) -> dict[str, int]:
    return asyncio.run(_queue_counts(database_url))


def wait_drained(database_url: str, timeout: float = 300.0) -> dict[str, int]:
    """Poll until the worker has run every queued event; the counts by status."""
    deadline = time.monotonic() + timeout
    while True:
        counts = queue_counts(database_url)
        if not any(counts.get(s, 0) for s in ("queued", "retry", "running")):
            return counts
        if time.monotonic() > deadline:
            raise RuntimeError(f"the queue did not drain in {timeout:g} s: {counts}")
        time.sleep(0.25)


# --- phases ----------------------------------------------------------------------------------


def throughput_round(server: Server, file: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One closed-loop run at one target, then (wizesync) until its worker ran every event.

    Besides rate and latency it counts the CPU that the target's process and its PostgreSQL
    backends used per request, during the load and (wizesync) end to end, until the worker has
    run every event: unlike rates, CPU per request hardly moves with whatever else the machine
    is doing.
    """
    admin = plain_dsn(args.postgres_url)
    before = queue_counts(server.database_url) if server.database_url else None
    cpu0, db0 = server.cpu_seconds(), backend_cpu(admin, server.db_name)
    started = time.monotonic()
    started_wall = time.time()
    result = loadgen.closed_load(
        server.port, PATH, file, args.connections, args.seconds, args.loadgen
    )
    cpu1, db1 = server.cpu_seconds(), backend_cpu(admin, server.db_name)
    completed = max(1, result["completed"])
    result["server_cpu_ms"] = round((cpu1 - cpu0) * 1000 / completed, 3)
    result["db_cpu_ms"] = round(cpu_delta(db0, db1) * 1000 / completed, 3)
    if server.database_url and before is not None:
        counts, worker_cpu, db2 = server.drain(admin)
        handled = counts["done"] - before["done"]
        result["worker_events_per_s"] = round(handled / (time.monotonic() - started), 1)
        result["handled"] = handled
        # Keeping up with the door: the events handled per second from the load's start to the
        # last one handled (the database's own stamp, not the drain poll), over the API's
        # accepted rate. 1.0: the last event ran as the load ended.
        last = last_handled_at(server.database_url)
        if last is not None and result["rps"]:
            e2e = handled / max(1e-3, last - started_wall)
            accepted_rate = int(result["statuses"].get("202", 0)) / result["duration_s"]
            result["keepup"] = round(e2e / max(1e-9, accepted_rate), 3)
            result["tail_ms"] = round((last - started_wall - result["duration_s"]) * 1000, 1)
        result["failed"] = sum(counts[s] - before[s] for s in ("dead", "quarantined", "ignored"))
        per_event = 1000 / max(1, handled)
        result["e2e_cpu_ms"] = round((server.cpu_seconds() - cpu0 + worker_cpu) * per_event, 3)
        result["e2e_db_cpu_ms"] = round(cpu_delta(db0, db2) * per_event, 3)
    accepted = int(result["statuses"].get("202", 0))
    result["non_202"] = result["completed"] - accepted
    log(
        f"  {server.label:<28} {result['rps']:>8.1f} req/s  p50 {result['p50_ms']:>6.2f} ms  "
        f"p99 {result['p99_ms']:>6.2f} ms  ({result['completed']} requests, "
        f"{result['non_202']} not 202; CPU/request {result['server_cpu_ms']:.2f} ms server, "
        f"{result['db_cpu_ms']:.2f} ms PostgreSQL"
        + (
            f"; end to end {result['e2e_cpu_ms']:.2f} + {result['e2e_db_cpu_ms']:.2f} ms"
            if "e2e_cpu_ms" in result
            else ""
        )
        + ")"
    )
    return result


def pickup(server: Server, secret: str, args: argparse.Namespace, tag: str) -> dict[str, Any]:
    assert server.database_url is not None
    wait_drained(server.database_url)
    count = int(args.pickup_rate * args.pickup_seconds)
    file = request_file(
        server.workdir, f"{server.key}-pickup", count, secret, f"{PICKUP_PREFIX}{tag}_"
    )
    sent_log = server.workdir / f"{server.key}.sent"
    answer = loadgen.run_paced(server.port, file, args.pickup_rate, args.pickup_seconds, sent_log)
    wait_drained(server.database_url)
    sent = dict(line.split() for line in sent_log.read_text().split("\n") if line)
    pickup_log = server.workdir / f"{server.key}.pickup"
    starts: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the handler may still be flushing its last lines
        lines = pickup_log.read_text().split("\n") if pickup_log.exists() else []
        starts = dict(ln.split() for ln in lines if ln.startswith(f"{PICKUP_PREFIX}{tag}_"))
        if len(starts) >= len(sent):
            break
        time.sleep(0.2)
    delays = sorted((float(starts[i]) - float(t)) * 1000 for i, t in sent.items() if i in starts)
    result = {
        "events": len(sent),
        "handled": len(delays),
        "p50_ms": round(loadgen.percentile(delays, 50), 2),
        "p99_ms": round(loadgen.percentile(delays, 99), 2),
        "max_ms": round(delays[-1], 2) if delays else 0.0,
        "post_answer_p50_ms": answer["p50_ms"],
        "post_answer_p99_ms": answer["p99_ms"],
        "statuses": answer["statuses"],
    }
    log(
        f"  pickup {server.label}: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms "
        f"({result['handled']}/{result['events']} handled; the 202 itself: p50 "
        f"{answer['p50_ms']} ms)"
    )
    return result


def warm_up(server: Server, file: Path, args: argparse.Namespace) -> None:
    """Fill the connection pools, prepare statements, import what is imported lazily."""
    loadgen.closed_load(server.port, PATH, file, args.connections, 3, args.loadgen)
    if server.database_url:
        server.drain(plain_dsn(args.postgres_url))


def run_targets(
    servers: list[Server], secret: str, args: argparse.Namespace, tag: str
) -> dict[str, list[dict[str, Any]]]:
    """Rounds of closed-loop load, each target in turn, the order rotating every round.

    A target runs only for its turn (started, warmed up, measured, drained, stopped): nothing
    idles beside the one measured, and the PostgreSQL server, shared with whatever else runs
    here, never holds more than one target's pool plus the anchor's.
    """
    rounds: dict[str, list[dict[str, Any]]] = {s.key: [] for s in servers}
    workdir = servers[0].workdir
    for n in range(args.rounds):
        log(f"round {n + 1}/{args.rounds}: signing {args.requests} requests")
        file = request_file(workdir, f"round-{tag}", args.requests, secret, f"msg_{tag}_{n}_")
        warm = request_file(workdir, f"warm-{tag}", args.warmup, secret, f"msg_warm_{tag}_{n}_")
        order = servers[n % len(servers) :] + servers[: n % len(servers)]
        for server in order:
            server.start()
            try:
                server.wait_ready()
                warm_up(server, warm, args)
                rounds[server.key].append(throughput_round(server, file, args))
            finally:
                server.stop()
        file.unlink()
        warm.unlink()
    return rounds


def pickups(servers: list[Server], secret: str, args: argparse.Namespace) -> dict[str, Any]:
    results = {}
    warm = request_file(servers[0].workdir, "warm-pickup", args.warmup, secret, "msg_warm_p_")
    for server in servers:
        if server.database_url is None or server.events == "off":
            continue  # nobody runs the events during the load
        server.start()
        try:
            server.wait_ready()
            warm_up(server, warm, args)
            results[server.key] = pickup(server, secret, args, server.key)
        finally:
            server.stop()
    return results


# --- report -----------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2) if values else 0.0


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rps": median([r["rps"] for r in rounds]),
        "p50_ms": median([r["p50_ms"] for r in rounds]),
        "p99_ms": median([r["p99_ms"] for r in rounds]),
        "worst_p99_ms": max((r["p99_ms"] for r in rounds), default=0.0),
        "server_cpu_ms": median([r["server_cpu_ms"] for r in rounds]),
        "db_cpu_ms": median([r["db_cpu_ms"] for r in rounds]),
        "e2e_cpu_ms": median([r["e2e_cpu_ms"] for r in rounds if "e2e_cpu_ms" in r]) or None,
        "e2e_db_cpu_ms": median([r["e2e_db_cpu_ms"] for r in rounds if "e2e_db_cpu_ms" in r])
        or None,
        "requests": sum(r["completed"] for r in rounds),
        "non_202": sum(r["non_202"] for r in rounds),
        "keepup": median([r["keepup"] for r in rounds if "keepup" in r]) or None,
        "tail_ms": median([r["tail_ms"] for r in rounds if "tail_ms" in r]) or None,
        "worker_events_per_s": median(
            [r["worker_events_per_s"] for r in rounds if "worker_events_per_s" in r]
        )
        or None,
        "failed_events": sum(r.get("failed", 0) for r in rounds),
    }


def machine() -> dict[str, Any]:
    mem_kb = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    wrk = shutil.which("wrk")
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "wrk": subprocess.run(
            ["wrk", "-v"], capture_output=True, text=True, check=False
        ).stdout.splitlines()[0]
        if wrk
        else None,
    }


def report(results: dict[str, Any]) -> str:
    labels = results["labels"]
    lines = [
        f"machine: {results['machine']}",
        f"load generator: {results['loadgen']}, {results['connections']} connections, "
        f"{results['rounds']} rounds of at most {results['requests']} requests / "
        f"{results['seconds']:g} s per target; medians over rounds",
        "",
        "| target | req/s | p50 ms | p99 ms | worst p99 ms | CPU ms/req under load: "
        "server + PostgreSQL | CPU ms/event end to end: server + worker, PostgreSQL "
        "| requests | not 202 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, s in results["summary"].items():
        e2e = f"{s['e2e_cpu_ms']:.2f} + {s['e2e_db_cpu_ms'] or 0:.2f}" if s["e2e_cpu_ms"] else ""
        lines.append(
            f"| {labels[key]} | {s['rps']:.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} "
            f"| {s['worst_p99_ms']:.2f} | {s['server_cpu_ms']:.2f} + "
            f"{s['db_cpu_ms']:.2f} | {e2e} | {s['requests']} | {s['non_202']} |"
        )
    lines.append("")
    for key, s in results["summary"].items():
        if s["worker_events_per_s"]:
            lines.append(
                f"{labels[key]}: worker ran every event ({s['failed_events']} not done); "
                f"end to end {s['worker_events_per_s']:.0f} events/s "
                "(load start -> queue empty)"
                + (
                    f"; keep-up ratio (events/s load start -> last handled, over "
                    f"accepted req/s) {s['keepup']:.3f}, last event {s['tail_ms']:.0f} ms "
                    "after the load"
                    if s.get("keepup")
                    else ""
                )
            )
    lines.append("")
    for key, ratios in results["ratios"].items():
        lines.append(
            f"ratio {labels[key]} / minimal insert, req/s per round: "
            + ", ".join(f"{r:.2f}" for r in ratios)
            + f"; median {median(ratios):.2f}"
        )
    lines.append("")
    for key, ratios in results["cpu_ratios"].items():
        lines.append(
            f"CPU ratio minimal insert / {labels[key]} (server + PostgreSQL CPU per "
            "request under load; a rate ratio on a CPU-bound machine): "
            + ", ".join(f"{r:.2f}" for r in ratios)
            + f"; median {median(ratios):.2f}"
        )
    lines.append("")
    for key, p in results["pickup"].items():
        lines.append(
            f"pickup {labels[key]} at {results['pickup_rate']:g}/s: "
            f"POST -> handler start p50 {p['p50_ms']:.2f} ms, p99 {p['p99_ms']:.2f} ms, "
            f"max {p['max_ms']:.2f} ms ({p['handled']}/{p['events']} handled)"
        )
    lines.append("")
    for goal, (met, text) in results["goals"].items():
        lines.append(f"goal {goal}: {'MET' if met else 'NOT MET'} ({text})")
    return "\n".join(lines)


def goals(results: dict[str, Any]) -> dict[str, tuple[bool, str]]:
    out = {}
    for key, how in (
        ("wizesync-pg", "in-process worker"),
        ("wizesync-pg-api", "API alone"),
        ("wizesync-pg-proc", "API + worker process"),
    ):
        if key not in results["summary"]:
            continue
        service = results["summary"][key]
        ratio = median(results["ratios"][key])
        out[f"ratio >= 0.8 ({how})"] = (ratio >= GOAL_RATIO, f"{ratio:.2f}")
        out[f"p99 < 50 ms at {results['connections']} connections ({how})"] = (
            service["p99_ms"] < GOAL_P99_MS,
            f"median {service['p99_ms']:.2f} ms, worst {service['worst_p99_ms']:.2f} ms",
        )
        if service.get("keepup"):
            out[f"end-to-end events/s >= accepted req/s ({how})"] = (
                service["keepup"] >= 0.995,
                f"ratio {service['keepup']:.3f} (2 decimals: {service['keepup']:.2f}); the last "
                f"event ran {service['tail_ms']:.0f} ms after the load ended",
            )
    pick = results["pickup"].get("wizesync-pg")
    if pick:
        out["pickup p50 < 20 ms at 100/s"] = (
            pick["p50_ms"] < GOAL_PICKUP_P50_MS,
            f"{pick['p50_ms']:.2f} ms",
        )
    return out


# --- main --------------------------------------------------------------------------------------


def _src(text: str) -> Path:
    if not (Path(text) / "wizesync" / "__init__.py").is_file():
        raise argparse.ArgumentTypeError(f"{text} holds no wizesync package")
    return Path(text).resolve()


def _variant(text: str) -> tuple[str, Path, str | None]:
    """LABEL=SRC, or LABEL=SRC@off / @inprocess / @process to choose how that target's events
    run (`wizesync_server`'s `worker`)."""
    label, sep, rest = text.partition("=")
    src, _, worker = rest.rpartition("@") if "@" in rest else (rest, "", "")
    if not sep or worker not in ("", *WORKER_MODES):
        raise argparse.ArgumentTypeError("LABEL=SRC[@off|@inprocess|@process]")
    return label, _src(src), worker or None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="wizesync ingest benchmark (see the module docstring)")
    p.add_argument(
        "--postgres-url",
        default=os.environ.get("WIZESYNC_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="a database to connect to for CREATE/DROP DATABASE of the scratch one",
    )
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--requests", type=int, default=20000, help="per round, at most")
    p.add_argument("--seconds", type=float, default=8.0, help="per target and round, at most")
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--pickup-rate", type=float, default=100.0)
    p.add_argument("--pickup-seconds", type=float, default=10.0)
    p.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    p.add_argument("--no-sqlite", action="store_true", help="skip the SQLite row")
    p.add_argument(
        "--no-api-only",
        action="store_true",
        help="skip the row of the API alone (WORKER=off, events run afterwards)",
    )
    p.add_argument(
        "--worker-process",
        action="store_true",
        help="add a row of the API (WORKER=off) with a `wizesync worker` process beside it, "
        "running the events during the load (the production layout)",
    )
    p.add_argument(
        "--src",
        type=_src,
        help="serve the wizesync package in this folder (a copy "
        "of src/) instead of the installed one",
    )
    p.add_argument("--json", type=Path, help="also write every figure to this file")
    p.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        type=_variant,
        metavar="LABEL=SRC[@off|@inprocess|@process]",
        help="A/B: also serve the wizesync package found in SRC (a copy of src/), "
        "on its own database, in the same rounds",
    )
    p.add_argument(
        "--variant-worker",
        choices=WORKER_MODES,
        default="inprocess",
        help="WORKER of the --variant targets",
    )
    args = p.parse_args(argv)
    if args.loadgen == "wrk" and not loadgen.wrk_available():
        p.error("--loadgen wrk: wrk is not installed (apt-get install wrk)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the servers stop and the scratch databases are dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tool = (
        "wrk"
        if args.loadgen == "wrk" or (args.loadgen == "auto" and loadgen.wrk_available())
        else "python"
    )
    workdir = Path(tempfile.mkdtemp(prefix="wizesync-bench-"))
    admin = plain_dsn(args.postgres_url)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    servers: list[Server] = []
    databases: list[str] = []

    def new_database(driver: str) -> str:
        name = f"wizesync_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
        databases.append(name)
        return with_database(args.postgres_url, name, driver)

    results: dict[str, Any] = {
        "machine": machine(),
        "loadgen": tool,
        "connections": args.connections,
        "rounds": args.rounds,
        "requests": args.requests,
        "seconds": args.seconds,
        "pickup_rate": args.pickup_rate,
        "labels": {},
        "summary": {},
        "pickup": {},
        "per_round": {},
    }
    try:
        results["postgres"] = asyncio.run(_admin(admin, "SHOW server_version"))
        log(f"work folder {workdir}, load generator {tool}")
        servers = [
            Server(
                "bare",
                "bare FastAPI (parse only)",
                uvicorn_cmd("anchors:bare_app"),
                base_env(),
                "/openapi.json",
                workdir,
            ),
            Server(
                "insert",
                "minimal asyncpg INSERT",
                uvicorn_cmd("anchors:insert_app"),
                base_env(ANCHOR_DATABASE_URL=new_database("postgresql")),
                "/openapi.json",
                workdir,
                db_name=databases[-1],
            ),
            wizesync_server(
                "wizesync-pg",
                "wizesync (PostgreSQL)",
                new_database("postgresql+asyncpg"),
                workdir,
                secret,
                src=args.src,
            ),
        ]
        if not args.no_api_only:
            servers.append(
                wizesync_server(
                    "wizesync-pg-api",
                    "wizesync API alone (PostgreSQL, WORKER=off)",
                    new_database("postgresql+asyncpg"),
                    workdir,
                    secret,
                    src=args.src,
                    worker="off",
                )
            )
        if args.worker_process:
            servers.append(
                wizesync_server(
                    "wizesync-pg-proc",
                    "wizesync API + worker process (PostgreSQL)",
                    new_database("postgresql+asyncpg"),
                    workdir,
                    secret,
                    src=args.src,
                    worker="process",
                )
            )
        for n, (label, src, worker) in enumerate(args.variant):
            worker = worker or args.variant_worker
            suffix = {"off": ", WORKER=off", "process": ", worker process"}.get(worker, "")
            servers.append(
                wizesync_server(
                    f"variant-{n}",
                    f"{label} (PostgreSQL{suffix})",
                    new_database("postgresql+asyncpg"),
                    workdir,
                    secret,
                    src=src,
                    worker=worker,
                )
            )
        if not args.no_sqlite:
            servers.append(
                wizesync_server(
                    "wizesync-sqlite",
                    "wizesync (SQLite)",
                    f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
                    workdir,
                    secret,
                    src=args.src,
                )
            )
        results["labels"] = {server.key: server.label for server in servers}
        postgres_targets = [s for s in servers if s.key != "wizesync-sqlite"]
        per_round = run_targets(postgres_targets, secret, args, "pg")
        if not args.no_sqlite:
            per_round.update(run_targets(servers[-1:], secret, args, "sqlite"))
        results["pickup"] = pickups(servers, secret, args)
        results["per_round"] = per_round
        results["summary"] = {key: summarise(rounds) for key, rounds in per_round.items()}
        compared = {
            key: rounds
            for key, rounds in per_round.items()
            if key.startswith(("wizesync-pg", "variant-"))
        }
        # Per round, so each ratio compares runs minutes apart, never across rounds.
        results["ratios"] = {
            key: [
                round(s["rps"] / i["rps"], 3)
                for s, i in zip(rounds, per_round["insert"], strict=True)
            ]
            for key, rounds in compared.items()
        }
        results["cpu_ratios"] = {
            key: [
                round(
                    (i["server_cpu_ms"] + i["db_cpu_ms"])
                    / max(1e-9, s["server_cpu_ms"] + s["db_cpu_ms"]),
                    3,
                )
                for s, i in zip(rounds, per_round["insert"], strict=True)
            ]
            for key, rounds in compared.items()
        }
        results["goals"] = goals(results)
        errors = {
            s.key: sum('"level": "error"' in ln for ln in s.log_file.read_text().split("\n"))
            for s in servers
            if s.database_url
        }
        results["service_error_lines"] = errors
        print(report(results))
        if any(errors.values()):
            print(f"\nerror lines in the service logs: {errors}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        return 0
    finally:
        for server in servers:
            server.stop()
        for name in databases:
            asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if args.keep:
            log(f"work folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
