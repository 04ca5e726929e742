"""The import rules of docs/ARCHITECTURE.md hold: import-linter's contracts in pyproject.toml."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_the_layers_and_the_sandbox_boundary_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    # lint_imports configures logging with dictConfig, whose disable_existing_loggers defaults
    # to true: every logger that exists is disabled, and the tests after this one in the same
    # process lost the service's log records. They are enabled again as they were.
    loggers = logging.Logger.manager.loggerDict.values()
    enabled = [lg for lg in loggers if isinstance(lg, logging.Logger) and not lg.disabled]
    try:
        assert lint_imports(config_filename="pyproject.toml", no_cache=True) == 0
    finally:
        for logger in enabled:
            logger.disabled = False
