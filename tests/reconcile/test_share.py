"""A run reads GHL's lists several pages at a time, alongside Wizehire's orders, and still never
sends more than its share of a location's budget in any window: the sandbox's own count of the
requests it received, with GHL's limit set to exactly the run's share."""

from __future__ import annotations

from typing import Any

import pytest

from tests.reconcile.conftest import ReconKit
from wizesync_sandbox.settings import SandboxConfig

WINDOW_SECONDS = 1.0
LIMIT = 10
RESERVE = 4
SHARE = LIMIT - RESERVE


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """GHL refuses anything past the run's share: a run that overstepped would see 429s."""
    return SandboxConfig(
        service_url=None,
        webhooks="off",
        fault_seed=1234,
        ghl_rate_limit_max=SHARE,
        ghl_rate_limit_interval_ms=int(WINDOW_SECONDS * 1000),
    )


@pytest.fixture
def flow_settings_overrides() -> dict[str, Any]:
    return {
        "ghl_rate_limit_max": LIMIT,
        "ghl_rate_limit_window_seconds": WINDOW_SECONDS,
        "reconcile_ghl_reserve": RESERVE,
    }


async def test_a_run_never_sends_more_than_its_share_in_any_window(recon: ReconKit) -> None:
    location = recon.flow.location_id
    for n in range(10):  # GHL checkouts, each with a Wizehire order pointing at it
        checkout = recon.checkout(qty=1, email=f"buyer{n}@example.com")
        recon.seed_wizehire(recon.new_order(ghl_order_id=checkout["_id"], ghl_location_id=location))
    recon.checkout(qty=1)  # one nobody points at: read once more to see its items
    # One whose GHL order is not in the window's list: read on its own.
    recon.seed_wizehire(recon.new_order(ghl_order_id="f" * 24, ghl_location_id=location))

    sent: list[float] = []
    limiter = recon.flow.sb.limiter
    hit = limiter.hit

    def counted(key: str) -> Any:
        decision = hit(key)
        sent.append(recon.flow.sb.clock.time())
        return decision

    limiter.reset()
    limiter.hit = counted  # type: ignore[method-assign]
    rec = recon.reconciler(ghl_page_size=1, wizehire_page_size=2)
    run = await recon.run(reconciler=rec)

    assert limiter.rejected == {}  # not one 429
    assert len(sent) == rec.limiter.total_calls > 3 * SHARE  # several windows' worth
    busiest = max(sum(1 for t in sent if start <= t < start + WINDOW_SECONDS) for start in sent)
    assert busiest <= SHARE
    assert run.counts["matched"] + run.counts["status_mismatch"] == 10
    assert run.counts["missing_in_wizehire"] == 1
