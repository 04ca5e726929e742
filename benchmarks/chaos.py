"""`make chaos`: the chaos run (tests/chaos/driver.py) with 2,000 orders, its figures printed.

2 API + 2 worker processes on one PostgreSQL database, the sandbox failing ~20% of GHL requests,
a random process SIGKILLed and restarted every few seconds, PostgreSQL cut once; then every promise
is checked from the sandbox's records. Exit status 1 when any check failed.

    .venv/bin/python benchmarks/chaos.py [--orders 2000] [--seconds 300] [--seed 12]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.chaos.driver import Options, run_chaos  # noqa: E402


async def _interruptible(work: Any) -> Any:
    """SIGTERM or SIGINT cancel the run, so its clean-up (processes, database) still happens;
    a shell's background job ignores SIGINT, so SIGTERM is the one that works there."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    return await task


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults_ = Options()
    parser.add_argument("--orders", type=int, default=defaults_.orders)
    parser.add_argument(
        "--seconds",
        type=float,
        default=defaults_.seconds,
        help="length of the chaos phase; orders are spread over it",
    )
    parser.add_argument("--seed", type=int, default=defaults_.seed)
    parser.add_argument("--locations", type=int, default=defaults_.locations)
    parser.add_argument("--kill-every", type=float, default=defaults_.kill_every)
    parser.add_argument("--outage-seconds", type=float, default=defaults_.outage_seconds)
    parser.add_argument("--poll-interval", type=int, default=defaults_.poll_interval)
    parser.add_argument("--worker-concurrency", type=int, default=defaults_.worker_concurrency)
    parser.add_argument("--drain-timeout", type=float, default=defaults_.drain_timeout)
    parser.add_argument("--keep", action="store_true", help="keep the logs even on success")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    options = Options(
        orders=args.orders,
        seconds=args.seconds,
        seed=args.seed,
        locations=args.locations,
        kill_every=args.kill_every,
        outage_seconds=args.outage_seconds,
        drain_timeout=args.drain_timeout,
        poll_interval=args.poll_interval,
        worker_concurrency=args.worker_concurrency,
        keep=args.keep,
    )
    figures = asyncio.run(_interruptible(run_chaos(options)))
    print(figures.text())
    if args.json:
        args.json.write_text(
            json.dumps(
                {"lines": figures.lines, "problems": figures.problems, "numbers": figures.numbers},
                indent=2,
                default=str,
            )
        )
    return 1 if figures.problems else 0


if __name__ == "__main__":
    sys.exit(main())
