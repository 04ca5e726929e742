"""The one HTTP client every GHL call shares (API and OAuth), built in the lifespan.

Explicit timeouts: a GHL call that hangs must fail as a timeout (retried or reported), never hold
a worker slot or a token lock forever.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from wizesync import __version__
from wizesync.config import Settings

GHL_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=10.0)


def build_http_client(
    settings: Settings, *, mounts: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> httpx.AsyncClient:
    """`mounts` routes some hosts elsewhere: the development sandbox answers in-process."""
    del settings  # base URLs differ per caller (API, OAuth); nothing else is per deployment yet
    return httpx.AsyncClient(
        timeout=GHL_TIMEOUT,
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        headers={"User-Agent": f"wizesync/{__version__}"},
        mounts=dict(mounts) if mounts else None,
    )
