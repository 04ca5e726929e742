"""Browser tests: Debian's Chromium driven by Playwright (never `playwright install`: the browser
is the system's), against `wizesync serve` running as a real server on a free port.

Where no Chromium (or no Playwright) can be found the tests skip with the reason; with `CI` set
they fail instead, so CI never passes without having run them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import Spawner

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"browser tests must run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    candidates = [
        os.environ.get("WIZESYNC_CHROMIUM", ""),
        "/usr/bin/chromium",
        shutil.which("chromium") or "",
        shutil.which("chromium-browser") or "",
    ]
    found = next((c for c in candidates if c and Path(c).is_file()), None)
    if found is None:
        _unavailable("no Chromium found (/usr/bin/chromium; Debian package `chromium`)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError as exc:
        _unavailable(f"Playwright for Python is not installed ({exc}); pip install -e '.[dev]'")
    return str(found)


@pytest.fixture
def spawner(tmp_path: Path) -> Iterator[Spawner]:
    spawner = Spawner(tmp_path)
    try:
        yield spawner
    finally:
        spawner.close()
