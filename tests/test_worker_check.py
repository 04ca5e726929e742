"""`wizesync worker --check`, the worker container's healthcheck: a fresh heartbeat of a worker
on this host is healthy; none, a stale one, a stopped one or another host's is not."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from tests.conftest import make_settings
from tests.support.ops_kit import free_port
from tests.support.waiting import eventually_sync
from tests.test_try_it import SERVICE_VARIABLES
from wizesync.cli import app
from wizesync.db import heartbeat_repo
from wizesync.db.base import utcnow
from wizesync.db.models import WorkerHeartbeat
from wizesync.worker_check import check_worker, fresh_within

WIZESYNC = Path(sys.executable).with_name("wizesync")


async def beat(sessionmaker, *, host: str, worker_id: str) -> None:
    async with sessionmaker.begin() as session:
        await heartbeat_repo.beat(session, worker_id=worker_id, hostname=host, pid=1, in_flight=0)


async def test_a_fresh_heartbeat_of_this_host_is_healthy(sessionmaker, database_url) -> None:
    settings = make_settings(database_url)
    alive, message = await check_worker(settings)
    assert not alive and f"no running worker on {socket.gethostname()}" in message
    await beat(sessionmaker, host="another-host", worker_id="w-other")
    assert not (await check_worker(settings))[0]
    await beat(sessionmaker, host=socket.gethostname(), worker_id="w-here")
    alive, message = await check_worker(settings)
    assert alive, message


async def test_a_stale_or_stopped_heartbeat_is_unhealthy(sessionmaker, database_url) -> None:
    settings = make_settings(database_url)
    await beat(sessionmaker, host="box-1", worker_id="w-1")
    async with sessionmaker.begin() as session:
        await session.execute(
            update(WorkerHeartbeat).values(
                last_seen_at=utcnow() - timedelta(seconds=fresh_within(settings) + 5)
            )
        )
    alive, message = await check_worker(settings, "box-1")
    assert not alive and "s old" in message
    await beat(sessionmaker, host="box-1", worker_id="w-1")
    assert (await check_worker(settings, "box-1"))[0]
    async with sessionmaker.begin() as session:
        await heartbeat_repo.stopped(session, worker_id="w-1")
    assert not (await check_worker(settings, "box-1"))[0]


def test_the_command_exits_1_in_words_when_the_database_is_unreachable(monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("WIZESYNC_ENV", "development")
    result = CliRunner().invoke(app, ["worker", "--check"])
    assert result.exit_code == 1
    assert "cannot read heartbeats" in result.stderr


@pytest.mark.slow
def test_a_running_worker_passes_its_healthcheck_and_serves_its_metrics(tmp_path: Path) -> None:
    """`wizesync worker --metrics-port` as compose runs it, and `worker --check` beside it."""
    env = {k: v for k, v in os.environ.items() if not SERVICE_VARIABLES.match(k)}
    env.update(WIZESYNC_ENV="development", DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/w.db")
    subprocess.run(
        [str(WIZESYNC), "migrate"],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=120,
    )
    check = [str(WIZESYNC), "worker", "--check"]
    before = subprocess.run(
        check, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert before.returncode == 1, before.stdout + before.stderr
    port = free_port()
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        [str(WIZESYNC), "worker", "--metrics-port", str(port), "--metrics-host", "127.0.0.1"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def checked() -> subprocess.CompletedProcess[str] | None:
            assert proc.poll() is None, (tmp_path / "worker.log").read_text()
            answer = subprocess.run(
                check, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
            )
            return answer if answer.returncode == 0 else None

        after = eventually_sync(checked, interval=0.5, what="`worker --check` to pass")
        assert "beat" in after.stdout
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert "# TYPE wizesync_event_attempts_total counter" in text
        assert "# TYPE wizesync_ghl_responses_total counter" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
