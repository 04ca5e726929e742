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

import logging
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from wizesync.ghl.errors import (
    GhlRateLimited,
    GhlServerError,
    GhlTimeout,
    error_from_response,
    is_invalid_token,
)
from wizesync.ghl.http_client import GHL_TIMEOUT
from wizesync.ghl.limits import RateLimiter, TokenProvider
from wizesync.ops import metrics
from wizesync.outbound import record_outbound_call
from wizesync.retrying import Sleep, default_sleep, jittered_backoff, retry_policy

log = logging.getLogger("wizesync.ghl")

DEFAULT_TIMEOUT = GHL_TIMEOUT  # sent with every request, whatever the shared client defaults to
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Query values that are personal data stay out of the outbound-call log.
_PRIVATE_PARAMS = frozenset({"email", "number", "phone", "search", "query"})


def checked_id(value: str, what: str = "id") -> str:
    """Ids go into URL paths: refuse anything that could change the path."""
    if not isinstance(value, str) or not _ID.match(value):
        raise ValueError(f"not a GHL {what}: {value!r}")
    return value


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
        self._sleep = sleep or default_sleep
        self._backoff = jittered_backoff(max_wait=8.0)

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

        def delay_of(exc: BaseException) -> float | None:
            return exc.delay if isinstance(exc, GhlRateLimited) else None

        retrying = retry_policy(
            max_attempts=self._max_attempts,
            backoff=self._backoff,
            sleep=self._sleep,
            retryable=retryable,
            delay_of=delay_of,
            logger=log,
            message="ghl call failed; retrying",
            method=method,
            path=path,
            error_fields=("trace_id",),
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

    def _done(self, method: str, path: str, shown: str, status: int | None, started: float) -> None:
        ms = (time.perf_counter() - started) * 1000
        metrics.GHL_RESPONSES.labels(status=str(status) if status is not None else "error").inc()
        metrics.GHL_REQUEST_DURATION.observe(ms / 1000)
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
