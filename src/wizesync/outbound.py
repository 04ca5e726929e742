"""The outbound-call log of the current queue attempt: what both API clients record into.

A leaf module, so the clients record calls without knowing the queue: the worker sets
`OUTBOUND_CALLS` to the attempt's list while its handler runs; elsewhere nothing is recorded.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

# The attempt's outbound-call log; HTTP clients append to it through `record_outbound_call`.
OUTBOUND_CALLS: ContextVar[list[dict[str, Any]] | None] = ContextVar(
    "wizesync_outbound_calls", default=None
)


def record_outbound_call(method: str, url: str, status: int | None, ms: float) -> None:
    calls = OUTBOUND_CALLS.get()
    if calls is not None and len(calls) < 200:
        calls.append({"method": method, "url": url, "status": status, "ms": round(ms, 1)})
