"""The Wizehire API client (the contract's "Service -> Wizehire" part).

Retry rules, and why every call may be retried:
- 5xx, 409 (same key still in progress), 429, timeouts and lost connections are retried with
  jittered backoff (tenacity). Writes are safe to send again because each carries the caller's
  deterministic `Idempotency-Key` and the very same body bytes: Wizehire performs the first and
  replays its answer for the others. Reads are safe anyway.
- 429 (and a 5xx with `Retry-After`) waits what Wizehire asks. A wait longer than
  `max_retry_wait` is not slept here: the error (with its delay) goes to the caller, whose worker
  reschedules the event.
- 401: the OAuth token is dropped and fetched again, and the request sent once more (Wizehire
  did nothing with it). A fixed API key cannot be cured that way: the 401 is raised.
- 400, 403, 404, 422: never retried; the typed error carries Wizehire's detail and field errors.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from wizesync.config import ConfigError, Settings
from wizesync.retrying import Sleep, default_sleep, jittered_backoff, retry_policy
from wizesync.wizehire.auth import WizehireAuth, build_wizehire_auth
from wizesync.wizehire.errors import (
    WizehireBadResponse,
    WizehireConflict,
    WizehireError,
    WizehireRateLimited,
    WizehireServerError,
    WizehireUnavailable,
    error_from_response,
)
from wizesync.wizehire.exchange import WIZEHIRE_TIMEOUT, send
from wizesync.wizehire.models import (
    ListedOrder,
    OrderSync,
    RefundUpdate,
    WizehireOrdersPage,
    iso_utc,
)

log = logging.getLogger("wizesync.wizehire")

# Printable ASCII without spaces: safe in a header, and readable in Wizehire's logs.
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class WriteResult:
    status: int
    body: dict[str, Any] = field(default_factory=dict)
    # Wizehire answered from its idempotency store: this write had already been performed.
    replayed: bool = False


def idempotency_key(*parts: object) -> str:
    """A deterministic key from what identifies the write, e.g. `(inbox event id, "order-sync")`:
    a retried or replayed step sends the same key, so Wizehire performs it at most once."""
    if not parts:
        raise ValueError("an idempotency key needs at least one part")
    text = "wizesync:" + ":".join(str(p) for p in parts)
    if _KEY.match(text):
        return text
    return "wizesync:sha256:" + hashlib.sha256(text.encode()).hexdigest()


class WizehireClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        auth: WizehireAuth,
        timeout: httpx.Timeout = WIZEHIRE_TIMEOUT,
        max_attempts: int = 5,
        max_retry_wait: float = 30.0,
        sleep: Sleep | None = None,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._auth = auth
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._max_retry_wait = max_retry_wait
        self._sleep = sleep or default_sleep
        self._backoff = jittered_backoff(max_wait=10.0)

    @property
    def auth_mode(self) -> str:
        return self._auth.mode

    def __repr__(self) -> str:
        return f"WizehireClient(base_url={self._base_url!r}, auth={self._auth!r})"

    # --- the contract's calls --------------------------------------------------------------------
    async def sync_order(
        self, order_id: str, body: OrderSync, *, idempotency_key: str
    ) -> WriteResult:
        """`PATCH /v1/orders/{order_id}/sync`: where the order stands in GHL."""
        return await self._write(f"/v1/orders/{_segment(order_id)}/sync", body, idempotency_key)

    async def update_refund(
        self, refund_id: str, body: RefundUpdate, *, idempotency_key: str
    ) -> WriteResult:
        """`PATCH /v1/refunds/{refund_id}`: a refund's progress."""
        return await self._write(f"/v1/refunds/{_segment(refund_id)}", body, idempotency_key)

    async def list_orders(
        self, updated_since: datetime, cursor: str | None = None, limit: int = 100
    ) -> WizehireOrdersPage:
        """One page of `GET /v1/orders`: orders changed since `updated_since` (naive = UTC)."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}, not {limit}")
        params: dict[str, Any] = {"updated_since": iso_utc(updated_since), "limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await self._request("GET", "/v1/orders", params=params)
        try:
            return WizehireOrdersPage.model_validate_json(response.content)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise WizehireBadResponse(
                f"GET /v1/orders answered something that is not an orders page "
                f"({where}: {first['msg']})",
                status=response.status_code,
            ) from None

    async def iter_orders(
        self, updated_since: datetime, *, limit: int = 100
    ) -> AsyncIterator[ListedOrder]:
        """Every order changed since `updated_since`, following `next_cursor` to the end."""
        async for page in self.iter_order_pages(updated_since, limit=limit):
            for order in page.data:
                yield order

    async def iter_order_pages(
        self, updated_since: datetime, *, cursor: str | None = None, limit: int = 100
    ) -> AsyncIterator[WizehireOrdersPage]:
        """Every page of orders changed since `updated_since`, from `cursor` (a page's
        `next_cursor` kept by a reader that stopped: it resumes there) to the end."""
        seen: set[str] = set()
        while True:
            page = await self.list_orders(updated_since, cursor, limit)
            yield page
            if not page.next_cursor:
                return
            if page.next_cursor in seen or page.next_cursor == cursor:
                raise WizehireBadResponse(
                    "GET /v1/orders gave a cursor it had already given; stopping to avoid a loop"
                )
            seen.add(page.next_cursor)
            cursor = page.next_cursor

    # --- the machinery ---------------------------------------------------------------------------
    async def _write(self, path: str, body: OrderSync | RefundUpdate, key: str) -> WriteResult:
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError("idempotency_key must be 1-255 printable ASCII characters, no spaces")
        # Serialized once: every retry sends the same bytes, so Wizehire recognises it.
        content = body.model_dump_json().encode()
        response = await self._request(
            "PATCH",
            path,
            content=content,
            headers={"Content-Type": "application/json", "Idempotency-Key": key},
        )
        try:
            answer = response.json() if response.content else {}
        except ValueError:
            answer = {}
        return WriteResult(
            status=response.status_code,
            body=answer if isinstance(answer, dict) else {"data": answer},
            replayed=response.headers.get("idempotent-replayed", "").lower() == "true",
        )

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The 2xx answer, or a typed `WizehireError` once retrying cannot help."""
        url = self._base_url + path
        refreshed = False
        attempts = 0

        async def attempt() -> httpx.Response:
            nonlocal refreshed, attempts
            attempts += 1
            token = await self._auth.token(self._http)
            response = await self._send(method, url, token, params, content, headers)
            if response.status_code == 401 and not refreshed:
                refreshed = True
                if await self._auth.rejected(token):
                    log.info(
                        "wizehire refused the access token; fetching a new one",
                        extra={"method": method, "path": path},
                    )
                    token = await self._auth.token(self._http)
                    response = await self._send(method, url, token, params, content, headers)
            if response.is_success:
                return response
            raise error_from_response(response)

        retrying = retry_policy(
            max_attempts=self._max_attempts,
            backoff=self._backoff,
            sleep=self._sleep,
            retryable=self._retryable,
            delay_of=_own_delay,
            logger=log,
            message="wizehire call failed; retrying",
            method=method,
            path=path,
            extra={"idempotency_key": (headers or {}).get("Idempotency-Key")},
        )
        try:
            return await retrying(attempt)
        except WizehireError as exc:
            exc.attempts = attempts
            raise

    def _retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, WizehireRateLimited):
            return exc.delay <= self._max_retry_wait
        if isinstance(exc, WizehireServerError | WizehireConflict | WizehireUnavailable):
            return exc.retry_after is None or exc.retry_after <= self._max_retry_wait
        return False

    async def _send(
        self,
        method: str,
        url: str,
        token: str,
        params: Mapping[str, Any] | None,
        content: bytes | None,
        extra: Mapping[str, str] | None,
    ) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            **(extra or {}),
        }
        return await send(
            self._http,
            method,
            url,
            params=params,
            content=content,
            headers=headers,
            http_timeout=self._timeout,
        )


def _own_delay(exc: BaseException) -> float | None:
    """The wait Wizehire asked for (429's delay, else any Retry-After); None: back off."""
    if isinstance(exc, WizehireRateLimited):
        return exc.delay
    if isinstance(exc, WizehireError):
        return exc.retry_after
    return None


def _segment(value: str) -> str:
    """An id as one URL path segment: escaped, so it can never change the path."""
    if not isinstance(value, str) or value.strip() in ("", ".", ".."):
        raise ValueError(f"not a Wizehire id: {value!r}")
    return quote(value, safe="")


def build_wizehire_client(
    settings: Settings, http: httpx.AsyncClient, **kwargs: Any
) -> WizehireClient:
    """The client the settings describe: `WIZEHIRE_API_URL` and one of the two auth modes."""
    if not settings.wizehire_api_url:
        raise ConfigError("WIZEHIRE_API_URL is not set: the Wizehire API cannot be called")
    return WizehireClient(
        http, base_url=settings.wizehire_api_url, auth=build_wizehire_auth(settings), **kwargs
    )
