"""A `wizesync sandbox` process on a free loopback port, for commands that talk HTTP to it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.ops_kit import free_port

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
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/_sandbox/config", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)
