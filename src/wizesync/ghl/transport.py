"""One GHL request, done right: budget, token, headers, timeouts, typed errors, retries.

Retry rules (why they differ by call):
- 401 "invalid token": `tokens.token_rejected()` once per call, then the call is sent once more
  (GHL refused it before doing anything, so this is safe for every method).
- 429: wait `Retry-After` (or the window length) and retry, for every method: a 429 was not
  performed. Waits longer than `max_rate_limit_wait` raise `GhlRateLimited` for the caller.
- 5xx, timeouts, lost connections: retried (tenacity, jittered backoff) only for reads. A create
  that failed this way may have happened: it raises, and the caller looks before creating again.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from wizesync.ghl.errors import (
    GhlRateLimited,
    GhlServerError,
    GhlTimeout,
    error_from_response,
    is_invalid_token,
)
from wizesync.ghl.http import GHL_TIMEOUT
from wizesync.ghl.limits import RateLimiter, TokenProvider
from wizesync.inbox.context import record_outbound_call

log = logging.getLogger("wizesync.ghl")

Sleep = Callable[[float], Awaitable[None]]
DEFAULT_TIMEOUT = GHL_TIMEOUT  # sent with every request, whatever the shared client defaults to
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Query values that are personal data stay out of the outbound-call log.
_PRIVATE_PARAMS = frozenset({"email", "number", "phone", "search", "query"})


def checked_id(value: str, what: str = "id") -> str:
    """Ids go into URL paths: refuse anything that could change the path."""
    if not isinstance(value, str) or not _ID.match(value):
        raise ValueError(f"not a GHL {what}: {value!r}")
    return value


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class GhlTransport:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        version: str,
        tokens: TokenProvider,
        limiter: RateLimiter,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_attempts: int = 4,
        max_rate_limit_wait: float = 30.0,
        sleep: Sleep | None = None,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._version = version
        self._tokens = tokens
        self._limiter = limiter
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._max_rate_limit_wait = max_rate_limit_wait
        self._sleep = sleep or _sleep
        self._backoff = wait_exponential(multiplier=0.5, max=8.0) + wait_random(0, 0.5)

    async def request(
        self,
        location_id: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        read_only: bool,
    ) -> httpx.Response:
        """The 2xx answer, or a typed `GhlError`. `read_only` calls may be retried after 5xx."""
        checked_id(location_id, "location id")
        refreshed = False

        async def attempt() -> httpx.Response:
            nonlocal refreshed
            token = await self._tokens.access_token(location_id)
            response = await self._send(location_id, method, path, params, json, token)
            if response.status_code == 401 and not refreshed:
                error = error_from_response(response)
                if is_invalid_token(error):
                    refreshed = True
                    log.info(
                        "ghl token rejected; refreshing once",
                        extra={"location_id": location_id, "trace_id": error.trace_id},
                    )
                    await self._tokens.token_rejected(location_id, token)
                    token = await self._tokens.access_token(location_id)
                    response = await self._send(location_id, method, path, params, json, token)
            if response.is_success:
                return response
            raise error_from_response(response)

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, GhlRateLimited):
                return exc.delay <= self._max_rate_limit_wait
            return read_only and isinstance(exc, GhlServerError | GhlTimeout)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, GhlRateLimited):
                return exc.delay
            return self._backoff(state)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "ghl call failed; retrying",
                extra={
                    "method": method,
                    "path": path,
                    "error": type(exc).__name__,
                    "status": getattr(exc, "status", None),
                    "trace_id": getattr(exc, "trace_id", None),
                    "attempt": state.attempt_number,
                    "wait_s": round(state.upcoming_sleep, 3),
                },
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=wait,
            retry=retry_if_exception(retryable),
            before_sleep=before_sleep,
            sleep=self._sleep,
            reraise=True,
        )
        return await retrying(attempt)

    async def _send(
        self,
        location_id: str,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: Any,
        token: str,
    ) -> httpx.Response:
        await self._limiter.acquire(location_id)
        url = self._base_url + path
        headers = {
            "Authorization": f"Bearer {token}",
            "Version": self._version,
            "Accept": "application/json",
        }
        shown = _loggable_url(url, params)
        started = time.perf_counter()
        try:
            response = await self._http.request(
                method, url, params=params, json=body, headers=headers, timeout=self._timeout
            )
        except httpx.TimeoutException as exc:
            self._done(method, path, shown, None, started)
            raise GhlTimeout(f"{method} {path} timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            self._done(method, path, shown, None, started)
            raise GhlServerError(
                f"{method} {path}: connection failed ({type(exc).__name__})"
            ) from exc
        self._done(method, path, shown, response.status_code, started)
        await self._limiter.observe(location_id, response.status_code, response.headers)
        return response

    def _done(
        self, method: str, path: str, shown: str, status: int | None, started: float
    ) -> None:
        ms = (time.perf_counter() - started) * 1000
        record_outbound_call(method, shown, status, ms)
        log.debug(
            "ghl call",
            extra={"method": method, "path": path, "status": status, "ms": round(ms, 1)},
        )


def _loggable_url(url: str, params: Mapping[str, Any] | None) -> str:
    if not params:
        return url
    shown = {k: ("***" if k in _PRIVATE_PARAMS else v) for k, v in params.items()}
    return f"{url}?{urlencode(shown, doseq=True)}"

