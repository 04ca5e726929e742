"""`wizesync reconcile` against a real sandbox process: plain progress lines off a terminal, the
counts at the end, exit codes; the progress bar on a terminal."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from tests.reconcile.test_scheduler_processes import _worker_env
from tests.support.processes import Proc, free_port, service_env
from tests.support.waiting import wait_answering_sync
from tests.test_cli import run_cli, words
from wizesync import samples
from wizesync.cli import reconcile as reconcile_cli
from wizesync.db import reconcile_repo
from wizesync.db.engine import create_engine, create_sessionmaker
from wizesync_sandbox.defaults import BOOST_PRICE_ID, DEFAULT_LOCATION_ID


@pytest.fixture
def sandbox_url(tmp_path: Path, sqlite_url: str) -> Iterator[str]:
    port = free_port()
    proc = Proc(
        "sandbox",
        ["sandbox", "--port", str(port), "--service-url", "", "--webhooks", "off"],
        service_env(sqlite_url),
        tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_answering_sync(
            base + "/_sandbox/wizehire/orders", lambda: None if proc.alive() else proc.tail()
        )
        yield base
    finally:
        proc.stop()


def _env(sandbox_url: str, database_url: str, tmp_path: Path) -> dict[str, str]:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        f"locations: {{default: {DEFAULT_LOCATION_ID}}}\n"
        f"products: {{JOB-BOOST-30: {{price_id: {BOOST_PRICE_ID}, "
        f"product_id: unused}}}}\n"
    )
    env = {
        k: v for k, v in _worker_env(sandbox_url, "off").items() if k != "WORKER_HANDLER_MODULES"
    }
    return {
        **env,
        "DATABASE_URL": database_url,
        "WIZESYNC_ENV": "test",
        "COLUMNS": "200",
        "MAPPING_FILE": str(mapping),
        "WIZEHIRE_WEBHOOK_SECRET": samples_secret(),
    }


def samples_secret() -> str:
    from wizesync.config import DEV_WIZEHIRE_SECRET

    return DEV_WIZEHIRE_SECRET


def test_reconcile_prints_progress_and_counts(
    cli_env: dict[str, str],
    sandbox_url: str,
    database_url: str,
    tmp_path: Path,
) -> None:
    order = samples.wizehire_order("wh_ord_cli_1")
    assert httpx.post(sandbox_url + "/_sandbox/wizehire/orders", json=order).is_success
    checkout = httpx.post(
        sandbox_url + "/_sandbox/ghl/checkout",
        json={
            "location_id": DEFAULT_LOCATION_ID,
            "items": [{"price_id": BOOST_PRICE_ID, "qty": 3}],
        },
    )
    assert checkout.is_success, checkout.text
    env = {**cli_env, **_env(sandbox_url, database_url, tmp_path)}
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    result = run_cli(env, "reconcile", "--since", since, "--no-heal")
    said = words(result)
    assert result.exit_code == 0, said
    assert "GHL orders read: " in said and "Wizehire orders compared: " in said
    assert "missing_in_ghl │ 1" in said and "missing_in_wizehire │ 1" in said
    assert "total │ 2" in said
    assert asyncio.run(_last_run(database_url)) == ("cli", "done", False)


async def _last_run(database_url: str) -> tuple[str, str, bool]:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            [run, *_] = await reconcile_repo.list_runs(session, limit=1)
            return run.trigger, run.status, run.heal
    finally:
        await engine.dispose()


def test_reconcile_refuses_a_bad_window(
    cli_env: dict[str, str],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    env = {**cli_env, "DATABASE_URL": sqlite_url, "WIZESYNC_ENV": "test"}
    result = run_cli(env, "reconcile", "--since", "2026-12-02", "--until", "2026-12-01")
    assert result.exit_code == 2 and "must be before until" in words(result)
    result = run_cli(env, "reconcile", "--since", "last tuesday")
    assert result.exit_code == 2 and "not an ISO-8601 time" in words(result)


def test_a_terminal_gets_a_progress_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(reconcile_cli, "console", Console(file=out, force_terminal=True, width=120))
    with reconcile_cli._Reporter() as report:
        assert report.bar is not None
        report("ghl_orders", 100, None)
        report("wizehire", 250, None)
    shown = out.getvalue()
    assert "GHL orders read" in shown and "Wizehire orders compared" in shown and "250" in shown
