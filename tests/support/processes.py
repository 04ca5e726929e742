"""Real processes for the resilience tests: workers and servers, free ports, and a TCP proxy that
plays "PostgreSQL is down" without touching the shared PostgreSQL server.

Every process writes its output to a file under the test's tmp dir (no pipes to fill up), and
`Spawner.close()` kills whatever is still alive, so a failing test never leaves a process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from tests.support.databases import _plain_dsn, postgres_admin_url
from tests.support.waiting import eventually
from wizesync.devmode import SANDBOX_GHL_PUBLIC_KEY_PEM

REPO_ROOT = Path(__file__).resolve().parents[2]
HANDLER_MODULE = "tests.support.handlers"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_answering(proc: Proc, http: httpx.AsyncClient, path: str = "/health") -> None:
    """Until `proc` (a server on `http`'s base URL) answers 200 on `path`; fails at once with
    its output when it exited."""

    async def answering() -> bool:
        if not proc.alive():
            raise AssertionError(f"{proc.name} exited early:\n{proc.tail()}")
        try:
            return (await http.get(path)).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(answering, timeout=60, what=f"{proc.name} to answer {path}")


def service_env(database_url: str, **overrides: str) -> dict[str, str]:
    """Environment for a `wizesync` subprocess: the test database, fast worker timings, and the
    scripted handlers. Overrides are variable names as the contract spells them."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WIZESYNC_", "WORKER", "DATABASE_URL", "GHL_", "WIZEHIRE_"))
    }
    env.update(
        DATABASE_URL=database_url,
        WIZESYNC_ENV="test",
        LOG_LEVEL="INFO",
        WORKER_HANDLER_MODULES=HANDLER_MODULE,
        WORKER_LEASE_SECONDS="3",
        WORKER_POLL_SECONDS="0.2",
        WORKER_BACKOFF_BASE_SECONDS="0.1",
        WORKER_BACKOFF_MAX_SECONDS="1",
        PYTHONPATH=os.pathsep.join(
            [str(REPO_ROOT), str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")]
        ).rstrip(os.pathsep),
        PYTHONUNBUFFERED="1",
        # The tests sign GHL webhooks with the sandbox's key: trusted only when configured.
        GHL_WEBHOOK_PUBLIC_KEY=SANDBOX_GHL_PUBLIC_KEY_PEM,
    )
    env.update(overrides)
    return env


class Proc:
    """A `python -m wizesync ...` subprocess with its output in a file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "wizesync", *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a signal for it never reaches pytest
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def send(self, sig: signal.Signals) -> None:
        if self.alive():
            self.popen.send_signal(sig)

    async def wait_exit(self, timeout: float = 60.0) -> int:
        async def exited() -> bool:
            return self.popen.poll() is not None

        try:
            await eventually(exited, timeout=timeout, what=f"{self.name} to exit")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.tail()}") from None
        return int(self.popen.returncode)

    async def wait_for_output(self, text: str, timeout: float = 60.0) -> None:
        async def seen() -> bool:
            if not self.alive():
                raise AssertionError(f"{self.name} exited early:\n{self.tail()}")
            return text in self.output()

        await eventually(seen, timeout=timeout, what=f"{text!r} from {self.name}")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._log.close()


class Spawner:
    """Starts workers and servers for one test and always kills them afterwards."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[Proc] = []

    def worker(self, database_url: str, *, grace: float | None = None, **env: str) -> Proc:
        args = ["worker"] + ([] if grace is None else ["--grace", str(grace)])
        return self._spawn("worker", args, service_env(database_url, **env))

    async def server(
        self, database_url: str, *, command: str = "serve", **env: str
    ) -> tuple[Proc, str]:
        """A `wizesync serve` (or `dev`: with the sandbox) on a free port, answering /health;
        returns it and its base URL."""
        port = free_port()
        proc = self._spawn(
            "server",
            [command, "--host", "127.0.0.1", "--port", str(port)],
            service_env(database_url, **{"WORKER": "inprocess", **env}),
        )
        base_url = f"http://127.0.0.1:{port}"

        async def healthy() -> bool:
            if not proc.alive():
                raise AssertionError(f"server exited early:\n{proc.tail()}")
            try:
                async with httpx.AsyncClient(timeout=5) as client:
                    return (await client.get(base_url + "/health")).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(healthy, timeout=60, what="the server to answer /health")
        return proc, base_url

    def _spawn(self, kind: str, args: list[str], env: dict[str, str]) -> Proc:
        proc = Proc(f"{kind}-{len(self.procs) + 1}", args, env, self.log_dir)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.alive():
                proc.popen.kill()
        for proc in self.procs:
            proc.stop(timeout=10)

    def outputs(self) -> str:
        """Every process's last lines, for assertion messages."""
        return "\n".join(f"--- {p.name} (pid {p.pid}) ---\n{p.tail(25)}" for p in self.procs)


# --- PostgreSQL faults ---------------------------------------------------------------------------


async def terminate_backends(database_url: str) -> int:
    """`pg_terminate_backend` every connection to THIS test database (never anyone else's)."""
    import asyncpg

    name = make_url(database_url).database
    conn = await asyncpg.connect(_plain_dsn(postgres_admin_url()), timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
    finally:
        await conn.close()
    return sum(1 for row in rows if row[0])


def via_proxy(database_url: str, proxy: TcpProxy) -> str:
    return (
        make_url(database_url)
        .set(host="127.0.0.1", port=proxy.port)
        .render_as_string(hide_password=False)
    )


class TcpProxy:
    """A TCP forwarder to PostgreSQL on its own thread and event loop.

    `stop()` closes the listener and cuts every open connection, which is what clients see when
    the server goes away; `start()` listens again on the same port. Running on its own loop keeps
    it forwarding while the test's loop is busy or blocked.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pg proxy", daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.Transport] = set()

    @classmethod
    def to(cls, database_url: str) -> TcpProxy:
        url = make_url(database_url)
        return cls(url.host or "127.0.0.1", url.port or 5432)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def start(self) -> None:
        self._call(self._start())

    def stop(self) -> None:
        self._call(self._stop())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()

    async def _start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )

    async def _stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()
        if server is not None:
            await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:  # raced with stop()
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer.transport, up_writer.transport}
        self._transports |= pair  # type: ignore[arg-type]
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for transport in pair:
                transport.abort()
            self._transports -= pair  # type: ignore[arg-type]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()  # one side ended: end the other too
