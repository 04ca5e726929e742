"""A `wizesync sandbox` process on a free loopback port, for commands that talk HTTP to it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.ops_kit import free_port
from tests.support.waiting import wait_answering_sync

WIZESYNC = Path(sys.executable).with_name("wizesync")


@contextmanager
def running_sandbox(log_dir: Path) -> Iterator[str]:
    """Yields its base URL (`/ghl`, `/wizehire`, `/_sandbox`); seeded, sending no webhooks."""
    port = free_port()
    log = log_dir / "sandbox.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(WIZESYNC), "sandbox", "--port", str(port), "--service-url", ""],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_answering_sync(
            f"{url}/_sandbox/config", lambda: None if proc.poll() is None else log.read_text()
        )
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)
