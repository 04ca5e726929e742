"""The `wizesync` command: migrate, events, doctor, configuration errors, and trigger against a
real `wizesync serve` process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from tests.conftest import make_settings
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.ops_kit import free_port, order_event, post_wizehire
from tests.support.waiting import wait_answering_sync, wait_for_status
from wizesync.cli import app
from wizesync.db.migrate import head_revision
from wizesync.inbox.context import PermanentFailure
from wizesync.inbox.registry import HandlerRegistry

# Every variable the service reads: none may leak in from the machine running the tests.
SERVICE_VARIABLES = re.compile(
    r"^(DATABASE_URL|WIZESYNC_ENV|ADMIN_TOKEN|LOG_LEVEL|WIZEHIRE_.*|GHL_.*|TOKEN_ENCRYPTION_KEY"
    r"|SLACK_WEBHOOK_URL|MAPPING_FILE|WORKER|WORKER_.*|POLL_INTERVAL_SECONDS|RECONCILE_CRON"
    r"|WEBHOOK_.*|TRIGGER_WIZEHIRE_SECRET)$"
)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """A clean environment and working directory (no `.env`); returns the variables to add."""
    for name in list(os.environ):
        if SERVICE_VARIABLES.match(name):
            monkeypatch.delenv(name)
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return {"COLUMNS": "200"}


def run_cli(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def words(result: Result) -> str:
    """stdout and stderr with line wrapping undone, for phrase assertions."""
    return " ".join((result.stdout + " " + result.stderr).split())


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception


def closed_port() -> int:
    return free_port()  # bound then released: nothing listens there


# --- migrate --------------------------------------------------------------------------------------


def test_migrate_creates_the_schema_on_a_fresh_sqlite_file(cli_env, tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    env = {**cli_env, "DATABASE_URL": f"sqlite+aiosqlite:///{db}"}
    result = run_cli(env, "migrate")
    assert result.exit_code == 0, words(result)
    assert "database is at the latest schema" in words(result)
    with sqlite3.connect(db) as conn:
        [(revision,)] = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert revision == head_revision()
    assert {"inbox_events", "event_attempts", "worker_heartbeats"} <= tables
    again = run_cli(env, "migrate")  # idempotent
    assert again.exit_code == 0, words(again)


def test_migrate_against_an_unreachable_database_fails_in_words(cli_env) -> None:
    url = f"postgresql+asyncpg://wizesync:db-pass-4471@127.0.0.1:{closed_port()}/wizesync"
    result = run_cli({**cli_env, "DATABASE_URL": url}, "migrate")
    assert result.exit_code == 1
    assert "migration failed:" in words(result)
    assert "db-pass-4471" not in words(result)
    assert_no_traceback(result)


# --- configuration errors -------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["migrate"], ["serve"], ["worker"], ["events", "list"]])
def test_a_production_config_error_exits_2_naming_the_variable(cli_env, command: list[str]) -> None:
    env = {
        **cli_env,
        "WIZESYNC_ENV": "production",
        "ADMIN_TOKEN": "a-real-admin-token",
        "WIZEHIRE_WEBHOOK_SECRET": "whsec_cHJvZHVjdGlvbi1zZWNyZXQtMTIzNA==",
    }
    result = run_cli(env, *command)
    assert result.exit_code == 2
    text = words(result)
    assert "configuration error:" in text
    assert "WIZEHIRE_API_URL is required" in text
    assert "a-real-admin-token" not in text and "whsec_" not in text
    assert_no_traceback(result)


def test_an_invalid_value_exits_2_naming_the_variable(cli_env) -> None:
    result = run_cli({**cli_env, "WORKER": "sideways"}, "migrate")
    assert result.exit_code == 2
    assert "WORKER:" in words(result) and "inprocess" in words(result)
    assert_no_traceback(result)


# --- events list / show / replay ------------------------------------------------------------------


def dying_registry() -> HandlerRegistry:
    registry = HandlerRegistry()

    @registry.on("wizehire", "order.created")
    async def ok(ctx: Any) -> None:
        return None

    @registry.on("wizehire", "order.updated")
    async def dies(ctx: Any) -> None:
        raise PermanentFailure("unmapped SKU JOB-BOOST-30")

    return registry


async def invoke(env: dict[str, str], *args: str) -> Result:
    """The CLI runs its own event loop: give it a thread."""
    return await asyncio.to_thread(run_cli, env, *args)


async def test_events_list_show_and_replay(cli_env, client_factory, settings) -> None:
    env = {**cli_env, "DATABASE_URL": settings.database_url, "WIZESYNC_ENV": "test"}
    client = await client_factory(registry=dying_registry())
    done = (await post_wizehire(client, order_event("order.created", "wh_ord_cli1"))).json()["id"]
    dead = (await post_wizehire(client, order_event("order.updated", "wh_ord_cli2"))).json()["id"]
    await wait_for_status(client, done, "done")
    await wait_for_status(client, dead, "dead")

    listed = await invoke(env, "events", "list")
    assert listed.exit_code == 0, words(listed)
    ids = [int(m) for m in re.findall(r"^│\s*(\d+)\s*│", listed.stdout, re.MULTILINE)]
    assert ids == [dead, done]  # newest first
    assert "unmapped SKU JOB-BOOST-30" in words(listed)

    only_dead = await invoke(env, "events", "list", "--status", "dead")
    assert "order.updated" in words(only_dead) and "order.created" not in words(only_dead)

    shown = await invoke(env, "events", "show", str(dead))
    assert shown.exit_code == 0, words(shown)
    event = json.loads(shown.stdout)
    assert event["id"] == dead and event["status"] == "dead"
    assert event["payload"]["data"]["order"]["id"] == "wh_ord_cli2"
    assert [a["outcome"] for a in event["attempt_log"]] == ["dead"]

    replayed = await invoke(env, "events", "replay", str(dead), str(done))
    assert replayed.exit_code == 0, words(replayed)
    assert f"event {dead} re-queued" in words(replayed)
    assert f"event {done} re-queued" in words(replayed)
    # The running service's worker picks the replayed events up.
    await wait_for_status(client, done, "done")
    await wait_for_status(client, dead, "dead")
    shown = json.loads((await invoke(env, "events", "show", str(done))).stdout)
    assert [a["outcome"] for a in shown["attempt_log"]] == ["done", "done"]


async def test_events_show_and_replay_of_unknown_or_queued_events_exit_1(
    cli_env, client_factory, settings
) -> None:
    env = {**cli_env, "DATABASE_URL": settings.database_url, "WIZESYNC_ENV": "test"}
    client = await client_factory(make_settings(settings.database_url, worker="off"))
    queued = (await post_wizehire(client, order_event())).json()["id"]

    shown = await invoke(env, "events", "show", "987654")
    assert shown.exit_code == 1 and "no event 987654" in words(shown)
    replayed = await invoke(env, "events", "replay", "987654")
    assert replayed.exit_code == 1 and "no event 987654" in words(replayed)
    replayed = await invoke(env, "events", "replay", str(queued))
    assert replayed.exit_code == 1
    assert f"event {queued} is queued; only finished events replay" in words(replayed)
    for result in (shown, replayed):
        assert_no_traceback(result)


# --- doctor ---------------------------------------------------------------------------------------


def test_doctor_says_all_is_well_in_words(cli_env, database_url: str) -> None:
    result = run_cli({**cli_env, "DATABASE_URL": database_url}, "doctor")
    assert result.exit_code == 0, words(result)
    text = words(result)
    shown = make_url(database_url).render_as_string(hide_password=True)
    for line in (
        f"✓ database: connected to {shown}",
        "✓ migrations: at head",
        "✓ wizehire webhook secret: 1 secret(s) usable",
        "✓ ghl webhook key: Ed25519 public key loads",
    ):
        assert line in text
    assert "✗" not in text


def test_doctor_reports_an_unreachable_database(cli_env) -> None:
    url = f"postgresql+asyncpg://wizesync:db-pass-5512@127.0.0.1:{closed_port()}/wizesync"
    result = run_cli({**cli_env, "DATABASE_URL": url}, "doctor")
    assert result.exit_code == 1
    text = words(result)
    assert "✗ database: cannot connect to postgresql+asyncpg://wizesync:***@127.0.0.1" in text
    assert "db-pass-5512" not in text
    assert "✓ ghl webhook key" in text  # the other checks still ran
    assert_no_traceback(result)


def test_doctor_reports_a_sqlite_database_never_migrated(cli_env, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'never-migrated.db'}"
    result = run_cli({**cli_env, "DATABASE_URL": url}, "doctor")
    assert result.exit_code == 1
    text = words(result)
    assert "✓ database: connected" in text
    assert "✗ migrations: the database has no schema yet: run `wizesync migrate`" in text


def test_doctor_reports_a_postgres_database_never_migrated(cli_env, postgres_url: str) -> None:
    url, reason = create_postgres_database()
    if url is None:
        pytest.skip(reason or "PostgreSQL not available")
    try:
        result = run_cli({**cli_env, "DATABASE_URL": url}, "doctor")
    finally:
        drop_postgres_database(url)
    assert result.exit_code == 1
    assert "✗ migrations: the database has no schema yet: run `wizesync migrate`" in words(result)


def test_doctor_reports_keys_that_do_not_load(cli_env, sqlite_url: str) -> None:
    env = {
        **cli_env,
        "DATABASE_URL": sqlite_url,
        "GHL_WEBHOOK_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n"
        "-----END PUBLIC KEY-----\n",
        "WIZEHIRE_WEBHOOK_SECRET": "whsec_%%%not-base64-7719",
    }
    result = run_cli(env, "doctor")
    assert result.exit_code == 1
    text = words(result)
    assert "✓ migrations: at head" in text
    assert "✗ ghl webhook key: GHL_WEBHOOK_PUBLIC_KEY does not load" in text
    assert "✗ wizehire webhook secret: WIZEHIRE_WEBHOOK_SECRET is not a valid whsec_ secret" in text
    assert "not-base64-7719" not in text
    assert_no_traceback(result)


def test_doctor_reports_an_unreadable_key_file(cli_env, sqlite_url: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ghl.pem"
    env = {**cli_env, "DATABASE_URL": sqlite_url, "GHL_WEBHOOK_PUBLIC_KEY": str(missing)}
    result = run_cli(env, "doctor")
    assert result.exit_code == 1
    text = words(result)
    assert "✗ configuration: GHL_WEBHOOK_PUBLIC_KEY: cannot read PEM file" in text
    assert "No such file or directory" in text
    assert_no_traceback(result)


def test_doctor_reports_a_production_config_error(cli_env, sqlite_url: str) -> None:
    env = {**cli_env, "DATABASE_URL": sqlite_url, "WIZESYNC_ENV": "production"}
    result = run_cli(env, "doctor")
    assert result.exit_code == 1
    assert "✗ configuration: refusing to start in production: ADMIN_TOKEN is required" in words(
        result
    )
    assert_no_traceback(result)


# --- trigger against a running service ------------------------------------------------------------


@pytest.fixture
def served(cli_env, tmp_path: Path) -> Iterator[str]:
    """`wizesync dev` (`make run`) in development mode on SQLite, on a free port (the sandbox
    stands in for GHL and Wizehire); yields its base URL."""
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not SERVICE_VARIABLES.match(name)}
    env.update(
        WIZESYNC_ENV="development",
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/s.db",
        LOG_LEVEL="INFO",
    )
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wizesync", "dev", "--port", str(port), "--migrate"],
            cwd=tmp_path / "workdir",
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_answering_sync(
            f"{base}/health", lambda: None if proc.poll() is None else log_path.read_text()
        )
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # Its logs are JSON lines, uvicorn's own included.
    for line in log_path.read_text().splitlines():
        if line.startswith("{"):
            json.loads(line)
        else:
            assert line == "database is at the latest schema", line


@pytest.mark.slow
@pytest.mark.parametrize(
    ("event_type", "source"), [("order.created", "wizehire"), ("OrderCreate", "ghl")]
)
def test_trigger_sends_a_signed_event_to_a_running_service(
    cli_env, served: str, event_type: str, source: str
) -> None:
    result = run_cli(cli_env, "trigger", event_type, "--url", served)
    assert result.exit_code == 0, words(result)
    status, _, body = result.stdout.strip().partition(" ")
    assert status == "202"
    answer = json.loads(body)
    assert answer["status"] == "queued"
    stored = httpx.get(f"{served}/admin/events/{answer['id']}", timeout=10).json()
    assert stored["source"] == source and stored["type"] == event_type
    assert stored["payload"]["type"] == event_type


def test_trigger_of_an_unknown_event_type_lists_the_valid_ones(cli_env) -> None:
    result = run_cli(cli_env, "trigger", "order.exploded")
    assert result.exit_code == 2
    text = words(result)
    assert "unknown event type 'order.exploded'" in text
    for valid in (
        "order.created",
        "order.updated",
        "refund.requested",
        "OrderCreate",
        "InvoicePaid",
        "UNINSTALL",
    ):
        assert valid in text
    assert_no_traceback(result)


def test_trigger_says_when_the_service_is_not_running(cli_env) -> None:
    result = run_cli(
        cli_env, "trigger", "order.created", "--url", f"http://127.0.0.1:{closed_port()}"
    )
    assert result.exit_code == 1
    assert "could not reach" in words(result)
    assert_no_traceback(result)
