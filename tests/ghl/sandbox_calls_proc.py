"""A worker-like process making GHL calls for one location against a running sandbox: the real
`GhlClient` (Private Integration Token) through the shared `DbRateLimiter`.

`python -m tests.ghl.sandbox_calls_proc --calls N --concurrency C --go FILE --out FILE`, with
DATABASE_URL, GHL_API_URL, GHL_PRIVATE_TOKEN, GHL_LOCATION_ID and GHL_RATE_LIMIT_* from the
environment. Prints "ready" once connected, waits for the go file, then "done". The out file
gets one `[started, finished, outcome]` per call (epoch seconds; outcome "ok" or the error's
class name).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import httpx

from wizesync.config import Settings
from wizesync.db.engine import create_engine, create_sessionmaker
from wizesync.db.schema_repo import ping
from wizesync.ghl.client import GhlClient
from wizesync.ghl.limits import StaticTokenProvider
from wizesync.ghl.ratelimit import DbRateLimiter


async def main(args: argparse.Namespace) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.ghl_private_token is not None and settings.ghl_location_id
    location = settings.ghl_location_id
    engine = create_engine(settings.database_url, pool_size=args.concurrency + 2)
    async with engine.connect() as conn:
        await ping(conn)
    limiter = DbRateLimiter(create_sessionmaker(engine), settings)
    results: list[tuple[float, float, str]] = []
    async with httpx.AsyncClient(timeout=30) as http:
        ghl = GhlClient(
            http,
            base_url=settings.ghl_api_url,
            version=settings.ghl_api_version,
            tokens=StaticTokenProvider(settings.ghl_private_token, location),
            limiter=limiter,
            max_rate_limit_wait=60.0,
        )
        print("ready", flush=True)
        go = Path(args.go)
        deadline = time.monotonic() + 120
        while not go.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

        todo = list(range(args.calls))

        async def caller() -> None:
            while todo:
                todo.pop()
                started = time.time()
                try:
                    await ghl.list_whitelabel_providers(location)
                    outcome = "ok"
                except Exception as exc:  # recorded, so the test says which call failed how
                    outcome = type(exc).__name__
                results.append((started, time.time(), outcome))

        await asyncio.gather(*(caller() for _ in range(args.concurrency)))
    await limiter.close()
    await engine.dispose()
    Path(args.out).write_text(json.dumps(results))
    print("done", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--go", required=True)
    parser.add_argument("--out", required=True)
    asyncio.run(main(parser.parse_args()))
