"""A worker-like process asking for one location's token many times at once.

`python -m tests.ghl.token_proc --location L --calls 20 --mode expired|rejected --stale T
--go FILE --out FILE`; configuration from the environment like the service (DATABASE_URL,
GHL_API_URL, GHL_CLIENT_*, TOKEN_ENCRYPTION_KEY). It connects first, prints "ready", waits for
the go file (so two processes start together), then runs the calls concurrently and writes
every token it got (or every error) to the out file as JSON.
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
from wizesync.ghl.tokens import build_token_provider


async def main(args: argparse.Namespace) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    engine = create_engine(settings.database_url, pool_size=25)
    async with engine.connect() as conn:  # connected before the start signal
        await ping(conn)
    sessionmaker = create_sessionmaker(engine)
    results: list[dict[str, str]] = []
    async with httpx.AsyncClient(timeout=30) as http:
        provider = build_token_provider(settings, sessionmaker, http)
        print("ready", flush=True)
        go = Path(args.go)
        deadline = time.monotonic() + 60
        while not go.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

        async def call() -> dict[str, str]:
            try:
                if args.mode == "rejected":
                    await provider.token_rejected(args.location, args.stale)
                return {"token": await provider.access_token(args.location)}
            except Exception as exc:
                return {"error": type(exc).__name__, "message": str(exc)}

        results = await asyncio.gather(*(call() for _ in range(args.calls)))
    await engine.dispose()
    Path(args.out).write_text(json.dumps(results))
    print("done", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--location", required=True)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--mode", choices=["expired", "rejected"], default="expired")
    parser.add_argument("--stale", default="")
    parser.add_argument("--go", required=True)
    parser.add_argument("--out", required=True)
    asyncio.run(main(parser.parse_args()))
