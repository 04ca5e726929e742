"""The two anchors the ingest benchmark measures wizesync against, as uvicorn app factories.

- `bare_app`: a FastAPI endpoint that reads the body and parses the JSON, nothing else. It is the
  ceiling for any FastAPI webhook endpoint on this machine.
- `insert_app`: the same plus one asyncpg `INSERT ... ON CONFLICT DO NOTHING` (autocommit, one
  round trip). It is the least a durable, deduplicating inbox can do; wizesync's goal is 0.8 of it.

Both answer `POST /webhooks/wizehire` like the service (202 queued, 200 duplicate), so the load
generator replays the very same signed requests at all three targets. Neither checks the
signature: that is part of what wizesync's extra cost is measured against.

    ANCHOR_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/DB \
        uvicorn --app-dir benchmarks --factory anchors:insert_app
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

# The same ceiling as the service's SQLAlchemy pool (20 connections: pool_size 20, no overflow),
# so the comparison is not about who may open more PostgreSQL connections.
POOL_MIN, POOL_MAX = 10, 20

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS anchor_events (
    id bigserial PRIMARY KEY,
    source varchar(16) NOT NULL,
    event_id varchar(255) NOT NULL,
    raw_body bytea NOT NULL,
    payload jsonb,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, event_id)
)
"""
INSERT = """
INSERT INTO anchor_events (source, event_id, raw_body, payload)
VALUES ('wizehire', $1, $2, $3::jsonb)
ON CONFLICT (source, event_id) DO NOTHING
RETURNING id
"""


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.post("/webhooks/wizehire", status_code=202)
    async def receive(request: Request) -> JSONResponse:
        body = await request.body()
        json.loads(body)
        return JSONResponse({"status": "queued"}, status_code=202)

    return app


def insert_app() -> FastAPI:
    dsn = os.environ["ANCHOR_DATABASE_URL"]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import asyncpg

        pool = await asyncpg.create_pool(dsn, min_size=POOL_MIN, max_size=POOL_MAX)
        await pool.execute(CREATE_TABLE)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/webhooks/wizehire", status_code=202)
    async def receive(request: Request) -> JSONResponse:
        body = await request.body()
        json.loads(body)  # as the bare anchor; PostgreSQL parses the jsonb text again
        row_id = await request.app.state.pool.fetchval(
            INSERT, request.headers.get("webhook-id", ""), body, body.decode()
        )
        if row_id is None:
            return JSONResponse({"status": "duplicate"}, status_code=200)
        return JSONResponse({"id": row_id, "status": "queued"}, status_code=202)

    return app
