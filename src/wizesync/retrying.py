"""The retry policy shared by the outbound API clients (GHL transport, Wizehire client).

Both clients retry one HTTP attempt the same way: a fixed number of attempts, the wait the API
asked for (429 / Retry-After) when there is one and jittered exponential backoff otherwise, and a
warning before each sleep. One policy for both, so the two cannot drift apart. What stays in
each client is what differs per API: which errors are retryable, where an error's own delay
comes from, the token refresh, and the log line's wording.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

Sleep = Callable[[float], Awaitable[None]]
Backoff = Callable[[RetryCallState], float]


async def default_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def jittered_backoff(max_wait: float) -> Backoff:
    """Exponential backoff from 0.5 s, capped at `max_wait`, plus up to 0.5 s of jitter."""
    return wait_exponential(multiplier=0.5, max=max_wait) + wait_random(0, 0.5)


def retry_policy(
    *,
    max_attempts: int,
    backoff: Backoff,
    sleep: Sleep,
    retryable: Callable[[BaseException], bool],
    delay_of: Callable[[BaseException], float | None],
    logger: logging.Logger,
    message: str,
    method: str,
    path: str,
    error_fields: tuple[str, ...] = (),
    extra: Mapping[str, Any] | None = None,
) -> AsyncRetrying:
    """A tenacity policy: call it with the async attempt, `await policy(attempt)`.

    An exception is retried while `retryable(exc)` and attempts remain, else re-raised as is.
    The wait is `delay_of(exc)` (the error's own delay) unless that is None, then `backoff`.
    Before each sleep `logger` warns `message` with, in this order: method, path, error, status,
    the `error_fields` read from the exception (None when missing), attempt, wait_s, `extra`.
    """

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        delay = delay_of(exc) if exc is not None else None
        return backoff(state) if delay is None else delay

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        fields: dict[str, Any] = {
            "method": method,
            "path": path,
            "error": type(exc).__name__,
            "status": getattr(exc, "status", None),
        }
        for name in error_fields:
            fields[name] = getattr(exc, name, None)
        fields["attempt"] = state.attempt_number
        fields["wait_s"] = round(state.upcoming_sleep, 3)
        fields.update(extra or {})
        logger.warning(message, extra=fields)

    return AsyncRetrying(
        stop=stop_after_attempt(max_attempts),
        wait=wait,
        retry=retry_if_exception(retryable),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
