"""The chaos run (benchmarks/chaos.py) with small numbers: 2 API and 2 worker processes on one
PostgreSQL database, the sandbox failing ~20% of GHL requests, processes SIGKILLed every few
seconds and PostgreSQL cut once; then every promise is checked from the sandbox's records.

`make chaos` runs the same driver with 2,000 orders; docs/BENCHMARKS.md ("Chaos") has figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.driver import Options, run_chaos
from tests.support.databases import (
    create_postgres_database,
    drop_postgres_database,
    postgres_required,
)

pytestmark = [pytest.mark.long, pytest.mark.slow, pytest.mark.postgres_only]


@pytest.fixture(scope="module")
def postgres_available() -> None:
    url, reason = create_postgres_database()
    if url is None:
        if postgres_required():
            pytest.fail(reason or "PostgreSQL is required")
        pytest.skip(reason or "PostgreSQL is not available")
    drop_postgres_database(url)


async def test_replicas_killed_and_postgres_cut_lose_nothing_and_do_nothing_twice(
    postgres_available: None, tmp_path: Path
) -> None:
    # Sized so every hazard still happens many times (about 8 kills, 200 faults, 40 duplicates,
    # refunds, checkouts, late payments, token renewals) in well under half the time 150 orders
    # over 60 s took; `make chaos` runs the full size.
    options = Options(
        orders=60,
        seconds=36,
        locations=3,
        kill_every=2.5,
        outage_seconds=5,
        poll_interval=5,
        token_refresh_every=20,
        drain_timeout=420,
        seed=20261204,
    )
    figures = await run_chaos(options, workdir=tmp_path)
    print(figures.text())

    assert figures.problems == [], figures.text()
    numbers = figures.numbers
    # The run really was hostile, or its clean result would prove nothing.
    assert numbers["kills"] >= 5
    assert numbers["faults"] >= 100
    assert numbers["duplicates"] >= 20
    assert numbers["outages"] == 1
    assert numbers["answered"] > 2 * options.orders  # Wizehire events and GHL webhooks
