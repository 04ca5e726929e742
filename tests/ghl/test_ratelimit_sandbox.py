"""The issue's rate-limit check against the sandbox: 300 calls for one location from two
worker-like processes, each through the real `GhlClient` and the shared `DbRateLimiter`, against
`wizesync sandbox` running as its own process (real 429s past 100 requests in any 10 s).

Asserted: every call succeeded and the sandbox refused none (its own count of 429s, so a 429 the
client silently waited out and retried still fails the test). How much of the budget the two
processes use is measured by `benchmarks/ghl_ratelimit.py --sandbox`, not asserted as a time.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.ghl.kit import run_together, subprocess_env
from tests.support.processes import Proc, free_port, wait_answering
from wizesync_sandbox.defaults import DEFAULT_LOCATION_ID, DEFAULT_PRIVATE_TOKEN

pytestmark = [pytest.mark.long, pytest.mark.slow]

CALLS_PER_PROCESS = 150


@pytest.fixture
def sandbox_url(tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GHL_", "WIZEHIRE_"))}
    proc = Proc(
        "sandbox",
        [
            "sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--service-url",
            "",
            "--webhooks",
            "off",
        ],
        env,
        tmp_path,
    )
    yield proc, f"http://127.0.0.1:{port}"
    proc.stop()


async def test_two_processes_make_300_calls_for_one_location_without_a_429(
    database_url: str, engine: object, sandbox_url, tmp_path: Path
) -> None:
    proc, base = sandbox_url
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        await wait_answering(proc, http)
        config = (await http.get("/_sandbox/config")).json()
        assert (config["ghl_rate_limit_max"], config["ghl_rate_limit_interval_ms"]) == (100, 10_000)

        env = subprocess_env(
            DATABASE_URL=database_url,
            GHL_API_URL=f"{base}/ghl",
            GHL_PRIVATE_TOKEN=DEFAULT_PRIVATE_TOKEN,
            GHL_LOCATION_ID=DEFAULT_LOCATION_ID,
        )
        per_process = await run_together(
            "sandbox_calls_proc",
            ["--calls", str(CALLS_PER_PROCESS), "--concurrency", "10"],
            env,
            tmp_path,
            done_timeout=240,
        )
        state = (await http.get("/_sandbox/state")).json()

    outcomes = [outcome for calls in per_process for _, _, outcome in calls]
    assert len(outcomes) == 2 * CALLS_PER_PROCESS
    assert set(outcomes) == {"ok"}, {o: outcomes.count(o) for o in set(outcomes)}
    # Both processes really competed for the budget: each was calling while the other was.
    first, second = ([f for _, f, _ in calls] for calls in per_process)
    assert min(first) < max(second) and min(second) < max(first)
    budget = state["rate_limits"][DEFAULT_LOCATION_ID]
    assert budget["rejected"] == 0, f"the sandbox answered {budget['rejected']} 429s"
    assert budget["today"] == 2 * CALLS_PER_PROCESS  # every call reached the sandbox once
