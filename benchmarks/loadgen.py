"""Load generators for the ingest benchmark: replay pre-signed requests at a loopback target.

Requests are built and signed before any timing, written to a file as
`<byte length> <webhook-id>\\n<raw HTTP/1.1 request>` records, and replayed each exactly once:

- closed loop, N keep-alive connections each sending its next request as soon as the previous
  one is answered, until the requests run out or the time limit passes. `wrk` (Debian's package,
  with `replay.lua`) when it is installed, because it costs the server's two cores far less;
  otherwise this module's own asyncio client, run as a separate process.
- paced (open loop): one request every 1/rate seconds for a fixed time, recording the wall-clock
  send time of every webhook-id, for the POST -> handler start measurement.

    python benchmarks/loadgen.py closed --port 8000 --requests reqs.bin --connections 32
    python benchmarks/loadgen.py paced --port 8000 --requests reqs.bin --rate 100 --sent sent.txt

Each prints one JSON line: completed, duration_s, rps, p50_ms, p99_ms, max_ms, statuses.
Only loopback addresses are accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPLAY_LUA = HERE / "replay.lua"


# --- request files -----------------------------------------------------------------------------


def raw_request(path: str, headers: dict[str, str], body: bytes, host: str = "127.0.0.1") -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def write_requests(file: Path, requests: Iterable[tuple[str, bytes]]) -> int:
    count = 0
    with file.open("wb") as out:
        for event_id, raw in requests:
            out.write(f"{len(raw)} {event_id}\n".encode())
            out.write(raw)
            count += 1
    return count


def read_requests(file: Path) -> list[tuple[str, bytes]]:
    records: list[tuple[str, bytes]] = []
    with file.open("rb") as source:
        while line := source.readline():
            length, _, event_id = line.decode().rstrip("\n").partition(" ")
            records.append((event_id, source.read(int(length))))
    return records


# --- results -------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(pct / 100 * len(sorted_values) + 0.4999999))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class Result:
    completed: int = 0
    duration_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    socket_errors: int = 0
    tool: str = "python"

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "tool": self.tool,
            "completed": self.completed,
            "duration_s": round(self.duration_s, 3),
            "rps": round(self.completed / self.duration_s, 1) if self.duration_s else 0.0,
            "p50_ms": round(percentile(lat, 50), 2),
            "p99_ms": round(percentile(lat, 99), 2),
            "max_ms": round(lat[-1], 2) if lat else 0.0,
            "statuses": dict(self.statuses),
            "socket_errors": self.socket_errors,
        }


# --- the asyncio client ------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection; just enough protocol for uvicorn's answers."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def send(self, raw: bytes) -> int:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, close = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
            elif name == b"transfer-encoding":
                raise RuntimeError("chunked answers are not expected from the targets")
        if length:
            await self.reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def closed_loop(
    host: str, port: int, requests: list[bytes], connections: int, max_seconds: float
) -> Result:
    result = Result()
    pending: Iterator[bytes] = iter(requests)
    conns = [Connection(host, port) for _ in range(connections)]
    await asyncio.gather(*(c.open() for c in conns))  # connecting is not part of the timing
    deadline = time.perf_counter() + max_seconds

    async def run(conn: Connection) -> None:
        for raw in pending:  # shared iterator: every request is sent once, by one connection
            if time.perf_counter() >= deadline:
                return
            started = time.perf_counter()
            try:
                status = await conn.send(raw)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                result.socket_errors += 1
                conn.close()
                continue
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.statuses[str(status)] += 1
            result.completed += 1

    started = time.perf_counter()
    await asyncio.gather(*(run(c) for c in conns))
    result.duration_s = time.perf_counter() - started
    for conn in conns:
        conn.close()
    return result


async def paced(
    host: str,
    port: int,
    records: list[tuple[str, bytes]],
    rate: float,
    seconds: float,
    sent_log: Path,
    connections: int = 8,
) -> Result:
    """Open loop: request i goes out at start + i/rate, whatever happened to the others."""
    result, sent = Result(), []
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        conn = Connection(host, port)
        await conn.open()
        free.put_nowait(conn)

    async def one(event_id: str, raw: bytes) -> None:
        conn = await free.get()
        try:
            sent.append(f"{event_id} {time.time():.6f}")
            started = time.perf_counter()
            status = await conn.send(raw)
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.statuses[str(status)] += 1
            result.completed += 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            result.socket_errors += 1
            conn.close()
        finally:
            free.put_nowait(conn)

    count = min(len(records), int(rate * seconds))
    tasks = []
    start = time.perf_counter()
    for i, (event_id, raw) in enumerate(records[:count]):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(event_id, raw)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    result.duration_s = time.perf_counter() - start
    sent_log.write_text("\n".join(sent) + "\n")
    while not free.empty():
        free.get_nowait().close()
    return result


# --- wrk -----------------------------------------------------------------------------------------


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    port: int, path: str, file: Path, connections: int, max_seconds: float
) -> dict[str, Any]:
    """Closed loop with wrk: one thread (each thread would replay the whole file)."""
    cmd = [
        "wrk",
        "-t",
        "1",
        "-c",
        str(connections),
        "-d",
        f"{max_seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(REPLAY_LUA),
        f"http://127.0.0.1:{port}{path}",
        "--",
        str(file),
    ]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=max_seconds + 60, check=False
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    data = json.loads(line.removeprefix("BENCHJSON "))
    data["tool"] = "wrk"
    data["rps"] = round(data["completed"] / data["duration_s"], 1) if data["duration_s"] else 0.0
    for key in ("p50_ms", "p99_ms", "max_ms"):
        data[key] = round(data[key], 2)
    return data


def run_python(port: int, file: Path, connections: int, max_seconds: float) -> dict[str, Any]:
    """Closed loop with this module's client, in its own process (never the server's loop)."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "closed",
        "--port",
        str(port),
        "--requests",
        str(file),
        "--connections",
        str(connections),
        "--max-seconds",
        str(max_seconds),
    ]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=max_seconds + 120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def closed_load(
    port: int, path: str, file: Path, connections: int, max_seconds: float, tool: str = "auto"
) -> dict[str, Any]:
    if tool == "wrk" or (tool == "auto" and wrk_available()):
        return run_wrk(port, path, file, connections, max_seconds)
    return run_python(port, file, connections, max_seconds)


def run_paced(port: int, file: Path, rate: float, seconds: float, sent_log: Path) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "paced",
        "--port",
        str(port),
        "--requests",
        str(file),
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        "--sent",
        str(sent_log),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"paced load generator failed: {done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- command line --------------------------------------------------------------------------------


def _loopback(host: str) -> str:
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"refusing a non-loopback target: {host}")
    return host


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    for mode in ("closed", "paced"):
        p = sub.add_parser(mode)
        p.add_argument("--host", default="127.0.0.1", type=_loopback)
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--requests", type=Path, required=True)
    sub.choices["closed"].add_argument("--connections", type=int, default=32)
    sub.choices["closed"].add_argument("--max-seconds", type=float, default=10.0)
    sub.choices["paced"].add_argument("--rate", type=float, default=100.0)
    sub.choices["paced"].add_argument("--seconds", type=float, default=10.0)
    sub.choices["paced"].add_argument("--sent", type=Path, required=True)
    args = parser.parse_args(argv)

    records = read_requests(args.requests)
    if args.mode == "closed":
        work = closed_loop(
            args.host, args.port, [raw for _, raw in records], args.connections, args.max_seconds
        )
    else:
        work = paced(args.host, args.port, records, args.rate, args.seconds, args.sent)
    try:
        import uvloop  # the same loop the servers use, and a cheaper client
    except ImportError:
        result = asyncio.run(work)
    else:
        result = uvloop.run(work)
    print(json.dumps(result.summary()))


if __name__ == "__main__":
    main()
