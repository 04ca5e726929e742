"""The import rules of docs/ARCHITECTURE.md hold: import-linter's contracts in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_the_layers_and_the_sandbox_boundary_hold() -> None:
    # A child process: import-linter's command configures logging with dictConfig, which would
    # disable every logger already created in this test process (and silence later caplog tests).
    done = subprocess.run(
        [str(LINT_IMPORTS), "--config", "pyproject.toml", "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
