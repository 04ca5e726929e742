"""`LOG_FORMAT=console`: aligned lines for a terminal, as redacted as the JSON ones; JSON stays
the default; start-up without alembic's chatter."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.logging import RichHandler
from typer.testing import CliRunner

from wizesync.cli import app
from wizesync.cli.serve import _log_format
from wizesync.config import Settings
from wizesync.db.migrate import upgrade_head
from wizesync.logs import EVENT_CONTEXT, REDACTED, JsonFormatter, configure_logging
from wizesync.logs_console import ConsoleFormatter

TOUCHED = (
    "",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "httpx",
    "httpcore",
    "aiosqlite",
    "alembic.runtime.plugins",
    "alembic.runtime.migration",
)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    saved = {
        name: (
            logging.getLogger(name).handlers[:],
            logging.getLogger(name).level,
            logging.getLogger(name).propagate,
            logging.getLogger(name).filters[:],
        )
        for name in TOUCHED
    }
    yield
    for name, (handlers, level, propagate, filters) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
        logger.filters[:] = filters


def record(msg: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("wizesync.flows.orders", logging.INFO, "", 0, msg, None, None)
    rec.__dict__.update(extra)
    return rec


def test_console_lines_name_the_logger_and_the_extras_and_redact_secrets() -> None:
    token = EVENT_CONTEXT.set({"inbox_id": 42, "type": "order.created"})
    try:
        line = ConsoleFormatter().format(
            record(
                "calling with Bearer abcdefghijklmnop",
                location_id="Loc1",
                api_key="k-123",
                note="two words",
            )
        )
    finally:
        EVENT_CONTEXT.reset(token)
    assert line.startswith("flows.orders ")
    assert "calling with Bearer " + REDACTED in line and "abcdefghijklmnop" not in line
    assert "inbox_id=42" in line and "type=order.created" in line
    assert "location_id=Loc1" in line and f"api_key={REDACTED}" in line and "k-123" not in line
    assert "note='two words'" in line


def test_console_tracebacks_are_redacted_too() -> None:
    try:
        raise RuntimeError("refresh failed: refresh_token=rt-secret-value")
    except RuntimeError:
        import sys

        rec = record("refresh failed")
        rec.exc_info = sys.exc_info()
    line = ConsoleFormatter().format(rec)
    assert "Traceback" in line and "rt-secret-value" not in line


def test_json_stays_the_default_and_console_is_rich(restore_logging) -> None:
    configure_logging("INFO")
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler.formatter, JsonFormatter)
    configure_logging("INFO", "console")
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, RichHandler)
    assert isinstance(handler.formatter, ConsoleFormatter)
    assert Settings(_env_file=None).log_format == "json"  # type: ignore[call-arg]


def test_log_format_auto_is_console_on_a_terminal_unless_log_format_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = Settings(_env_file=None)  # type: ignore[call-arg]
    chosen = Settings(_env_file=None, log_format="json")  # type: ignore[call-arg]
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert _log_format(plain, "auto") == "console"
    assert _log_format(chosen, "auto") == "json"
    assert _log_format(plain, "json") == "json" and _log_format(plain, None) == "json"
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    assert _log_format(plain, "auto") == "json"


def test_migrating_says_what_it_ran_without_alembics_chatter(
    restore_logging, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    configure_logging("INFO")
    upgrade_head(f"sqlite+aiosqlite:///{tmp_path}/m.db")
    err = capfd.readouterr().err
    messages = [json.loads(line)["msg"] for line in err.splitlines() if line.startswith("{")]
    assert any(m.startswith("Running upgrade") for m in messages), messages
    assert not [
        m for m in messages if m.startswith(("setup plugin", "Context impl", "Will assume"))
    ], messages


def test_an_unknown_log_format_option_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite+aiosqlite:///:memory:")
    result = CliRunner().invoke(app, ["serve", "--log-format", "xml"])
    assert result.exit_code == 2
    assert "--log-format is json, console or auto" in result.stderr
