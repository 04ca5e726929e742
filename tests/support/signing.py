"""Signed requests for tests: the same helpers `wizesync trigger` uses."""

from __future__ import annotations

import json
from typing import Any

from wizesync.config import DEV_WIZEHIRE_SECRET
from wizesync.signing import ghl_headers, wizehire_headers


def wizehire_request(
    payload: Any,
    *,
    event_id: str | None = None,
    secret: str = DEV_WIZEHIRE_SECRET,
    timestamp: float | None = None,
) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return body, wizehire_headers(secret, body, event_id=event_id, timestamp=timestamp)


def ghl_request(payload: Any) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return body, ghl_headers(body)
