"""Two processes spend one location's budget at once: no window ever holds more requests than
the limit (checked on the moments the requests were sent, across both processes). The budget is
small so the test runs in seconds; how much of it gets used is measured by
benchmarks/ghl_ratelimit.py, not asserted here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ghl.kit import run_together, subprocess_env
from tests.ghl.test_ratelimit import busiest_window

pytestmark = pytest.mark.slow

LIMIT, WINDOW, CALLS = 10, 1.0, 30


async def test_two_processes_never_exceed_the_shared_window(
    database_url: str, engine: object, tmp_path: Path
) -> None:
    env = subprocess_env(
        DATABASE_URL=database_url,
        GHL_RATE_LIMIT_MAX=str(LIMIT),
        GHL_RATE_LIMIT_WINDOW_SECONDS=str(WINDOW),
        GHL_RATE_LIMIT_MAX_WAIT_SECONDS="60",
    )
    per_process = await run_together(
        "ratelimit_proc",
        ["--location", "loc_shared_budget_000001", "--calls", str(CALLS), "--concurrency", "4"],
        env,
        tmp_path,
        done_timeout=120,
    )
    assert [len(times) for times in per_process] == [CALLS, CALLS]
    # Both processes really competed: each one sent while the other was sending.
    first, second = (sorted(times) for times in per_process)
    assert first[0] < second[-1] and second[0] < first[-1]
    assert busiest_window(first + second, WINDOW) <= LIMIT
