"""README's "Try it", every `wizesync trigger` sample and `make demo`, run as a new user would,
against running services: every command succeeds and every event they cause ends `done`."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.support.ops_kit import free_port
from tests.support.waiting import eventually_sync, wait_answering_sync
from wizesync import samples

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[1]
WIZESYNC = Path(sys.executable).with_name("wizesync")
UNSETTLED = {"queued", "running", "retry"}
# Every variable the service reads: none may leak in from the machine running the tests.
SERVICE_VARIABLES = re.compile(
    r"^(DATABASE_URL|WIZESYNC_.*|ADMIN_TOKEN|LOG_LEVEL|LOG_FORMAT|WIZEHIRE_.*|GHL_.*"
    r"|TOKEN_ENCRYPTION_KEY|SLACK_WEBHOOK_URL|MAPPING_FILE|WORKER|WORKER_.*|METRICS_TOKEN"
    r"|POLL_INTERVAL_SECONDS|RECONCILE_.*|WEBHOOK_.*|TRIGGER_WIZEHIRE_SECRET)$"
)


def try_it_commands() -> list[str]:
    """The shell lines of README's "Try it" block, comments dropped."""
    section = (ROOT / "README.md").read_text().split("## Try it", 1)[1]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    return [line for line in lines if line]


class Served:
    """`make run` as a subprocess: `wizesync migrate`, then `wizesync dev`, development mode
    with nothing configured (the built-in sandbox), SQLite in a temp dir, a free port."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = tmp_path / "workdir"
        self.workdir.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not SERVICE_VARIABLES.match(k)}
        self.env.update(
            WIZESYNC_ENV="development",
            COLUMNS="200",
            DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/wizesync.db",
        )
        self.log = tmp_path / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        subprocess.run(
            [str(WIZESYNC), "migrate"],
            cwd=self.workdir,
            env=self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(WIZESYNC), "dev", "--port", str(self.port)],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        proc = self.proc
        wait_answering_sync(
            f"{self.url}/health", lambda: None if proc.poll() is None else self.log.read_text()
        )

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def shell(self, line: str) -> subprocess.CompletedProcess[str]:
        """A README line as a new user types it, aimed at this service."""
        line = line.replace(".venv/bin/wizesync", str(WIZESYNC))
        line = line.replace("localhost:8000", f"127.0.0.1:{self.port}")
        return subprocess.run(
            ["bash", "-o", "pipefail", "-c", line],
            cwd=self.workdir,
            env={**self.env, "WIZESYNC_URL": self.url},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def trigger(self, event_type: str) -> None:
        done = self.shell(f".venv/bin/wizesync trigger {event_type}")
        assert done.returncode == 0, f"trigger {event_type}: {done.stdout}{done.stderr}"
        assert done.stdout.startswith("202 "), done.stdout


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    service = Served(tmp_path)
    try:
        service.start()
        yield service
    finally:
        service.stop()


def settled_events(base_url: str, timeout: float = 90.0) -> list[dict[str, Any]]:
    """Every inbox event, once none is queued, running or waiting for a retry (or at timeout)."""
    last: list[dict[str, Any]] = []

    def settled() -> bool:
        last[:] = httpx.get(f"{base_url}/admin/events", params={"limit": 500}, timeout=10).json()[
            "data"
        ]
        return not any(e["status"] in UNSETTLED for e in last)

    with contextlib.suppress(AssertionError):  # at timeout: the events as they are
        eventually_sync(settled, timeout=timeout, what="every event to settle")
    return list(last)


def assert_all_done(events: list[dict[str, Any]]) -> None:
    assert events
    not_done = [
        (e["id"], e["source"], e["type"], e["status"], e.get("last_error"))
        for e in events
        if e["status"] != "done"
    ]
    assert not not_done, not_done


def test_served_starts_the_service_as_make_run_does() -> None:
    recipe = (ROOT / "Makefile").read_text().split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "$(BIN)/wizesync migrate" in recipe
    assert "$(BIN)/wizesync dev " in recipe  # `dev`: with the sandbox, as `Served` starts it


def test_readme_try_it_ends_with_every_event_done(served: Served) -> None:
    commands = try_it_commands()
    assert commands[0] == "make run"  # the service itself: `served`, as `make run` starts it
    assert any("trigger OrderCreate" in c for c in commands)
    for line in commands[1:]:
        done = served.shell(line)
        assert done.returncode == 0, f"{line}:\n{done.stdout}{done.stderr}"
    events = settled_events(served.url)
    assert {"order.created", "OrderCreate"} <= {e["type"] for e in events}
    assert_all_done(events)


def test_every_trigger_sample_ends_done_against_make_run(served: Served) -> None:
    sandbox = f"{served.url}/sandbox/_sandbox"
    served.trigger("order.created")

    def paid() -> bool:
        orders = httpx.get(f"{sandbox}/wizehire/orders", timeout=10).json()["data"]
        return any((o.get("ghl_sync") or {}).get("payment_status") == "paid" for o in orders)

    eventually_sync(paid, what="the sample order to sync as paid")
    for event_type in samples.WIZEHIRE_TYPES + samples.GHL_TYPES:
        if event_type != "order.created":
            served.trigger(event_type)
    events = settled_events(served.url)
    assert set(samples.WIZEHIRE_TYPES + samples.GHL_TYPES) <= {e["type"] for e in events}
    assert_all_done(events)
    refunds = httpx.get(f"{sandbox}/wizehire/refunds", timeout=10).json()["data"]
    assert refunds and all(r.get("status") for r in refunds)


def test_a_refund_sample_before_any_order_says_what_to_do_first(served: Served) -> None:
    done = served.shell(".venv/bin/wizesync trigger refund.requested")
    assert done.returncode == 1
    assert "run `wizesync trigger order.created` first" in " ".join(done.stderr.split())


def _demo_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("wizesync_demo", ROOT / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look themselves up
    spec.loader.exec_module(module)
    return module


def test_make_demo_ends_with_every_event_done(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    for name in list(os.environ):
        if SERVICE_VARIABLES.match(name):
            monkeypatch.delenv(name)
    demo = _demo_module(monkeypatch)
    out = io.StringIO()
    with demo.Stack(poll_interval=5) as stack:
        demo.run_demo(stack, Console(file=out, width=200))
        events = settled_events(stack.service_url)
    assert_all_done(events)
    assert {"order.created", "refund.requested"} <= {e["type"] for e in events}


async def test_go_live_test_order_runs_a_sample_order_through_the_sandbox_to_done(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wizesync.config import Settings
    from wizesync.doctor.golive import sample_order

    for name in list(os.environ):
        if SERVICE_VARIABLES.match(name):
            monkeypatch.delenv(name)
    monkeypatch.chdir(served.workdir)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    async with httpx.AsyncClient(timeout=10) as client:
        ok, name, message = await sample_order(settings, served.url, client)
    assert ok, message
    assert name == "test order" and "synced through the sandbox" in message
