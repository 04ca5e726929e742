"""A process spending one location's GHL budget through `DbRateLimiter`.

`python -m tests.ghl.ratelimit_proc --location L --calls N --concurrency C --go FILE --out FILE`,
with DATABASE_URL and GHL_RATE_LIMIT_* from the environment. Each call reserves budget, notes
the moment it would send (`time.time()`: one machine, one clock), "talks to GHL" for a few
milliseconds and reports the answer to the limiter. The out file gets the send times as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from wizesync.config import Settings
from wizesync.db.engine import create_engine, create_sessionmaker
from wizesync.db.schema_repo import ping
from wizesync.ghl.ratelimit import DbRateLimiter


async def main(args: argparse.Namespace) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    engine = create_engine(settings.database_url, pool_size=args.concurrency + 2)
    async with engine.connect() as conn:
        await ping(conn)
    limiter = DbRateLimiter(create_sessionmaker(engine), settings)
    print("ready", flush=True)
    go = Path(args.go)
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)

    sent: list[float] = []
    queue = list(range(args.calls))

    async def caller() -> None:
        while queue:
            queue.pop()
            await limiter.acquire(args.location)
            sent.append(time.time())
            await asyncio.sleep(0.005)  # the request itself
            await limiter.observe(args.location, 200, {})

    await asyncio.gather(*(caller() for _ in range(args.concurrency)))
    await limiter.close()
    await engine.dispose()
    Path(args.out).write_text(json.dumps(sent))
    print("done", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--location", required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--go", required=True)
    parser.add_argument("--out", required=True)
    asyncio.run(main(parser.parse_args()))
