"""Typed GHL failures, built from GHL's two error body shapes, each with GHL's `traceId` if sent.

GHL answers errors as `{statusCode, message, error}` (422: `message` is a list of strings) and some
404s as `{status, message, name, traceId}`. Callers branch on the class, never on the text; the
class also says whether waiting can help (`transient`), so flows map it to retry-later or dead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx

# When GHL gives no hint how long to back off, wait one rate-limit window (100 per 10 s).
DEFAULT_RATE_LIMIT_DELAY = 10.0
# A paused sub-account ("Location is not active") comes back by itself, but not in seconds.
DEFAULT_LOCATION_INACTIVE_DELAY = 900.0


class GhlError(Exception):
    transient: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        messages: list[str] | None = None,
        trace_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.messages = messages if messages is not None else [message]
        self.trace_id = trace_id

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.trace_id:
            parts.append(f"traceId={self.trace_id}")
        return " ".join(parts)


class GhlAuthError(GhlError):
    """401 invalid token: the client refreshes once and retries; this escapes only after that."""


class GhlNeedsReauth(GhlError):
    """Refresh is impossible (invalid_grant, rejected Private Integration Token): a human must
    install or authorise again; events for the location wait for that."""


class GhlNotInstalled(GhlError):
    """This service holds no credentials for the location at all (a Private Integration Token for
    another location, or no OAuth install): nothing to re-authorise and nothing waiting can fix.
    A human installs the app there (or fixes the mapping) and replays the event."""

    def __init__(self, message: str, *, location_id: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.location_id = location_id


class GhlScopeError(GhlError):
    """401 "not authorized for this scope" (or 403): a refresh cannot add scopes."""


class GhlRateLimited(GhlError):
    transient = True

    def __init__(self, message: str, *, delay: float = DEFAULT_RATE_LIMIT_DELAY, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.delay = delay


class GhlNotFound(GhlError):
    pass


class GhlValidationError(GhlError):
    """GHL refused the input (422, or a 400 other than a paused location): fix the data."""


class GhlServerError(GhlError):
    """5xx, or the connection failed before an answer."""

    transient = True


class GhlLocationInactive(GhlError):
    """400 "Location is not active": the sub-account is paused; the same token works later."""

    transient = True

    def __init__(
        self, message: str, *, delay: float = DEFAULT_LOCATION_INACTIVE_DELAY, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.delay = delay


class GhlTimeout(GhlError):
    transient = True


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that also works on plain dicts (httpx.Headers already is)."""
    value = headers.get(name)
    if value is None and not isinstance(headers, httpx.Headers):
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """How long a 429 asks to wait: `Retry-After` (seconds or HTTP date), else the window length
    from `X-RateLimit-Interval-Milliseconds` (GHL's `Retry-After` is unconfirmed)."""
    value = header(headers, "retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                return max(0.0, (when - datetime.now(UTC)).total_seconds())
    interval = header(headers, "x-ratelimit-interval-milliseconds")
    if interval:
        try:
            return max(0.0, float(interval) / 1000.0)
        except ValueError:
            return None
    return None


def parse_error_body(content: bytes) -> tuple[list[str], str | None]:
    """(messages, traceId) from either GHL error shape; tolerant of bodies that are neither."""
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = content.decode("utf-8", errors="replace").strip()[:300] if content else ""
        return [text] if text else [], None
    raw = body.get("message", body.get("error", body.get("msg")))
    if isinstance(raw, list):
        messages = [str(m) for m in raw]
    elif raw is None:
        messages = [str(body["error"])] if body.get("error") else []
    else:
        messages = [str(raw)]
    trace = body.get("traceId")
    return messages, str(trace) if trace else None


def error_from_response(response: httpx.Response) -> GhlError:
    """The typed exception for a non-2xx GHL answer."""
    messages, trace_id = parse_error_body(response.content)
    status = response.status_code
    message = "; ".join(messages) or response.reason_phrase or f"HTTP {status}"
    lowered = message.lower()
    kw: dict[str, Any] = {"status": status, "messages": messages or [message], "trace_id": trace_id}
    if status == 429:
        delay = retry_after_seconds(response.headers)
        return GhlRateLimited(
            message, delay=DEFAULT_RATE_LIMIT_DELAY if delay is None else delay, **kw
        )
    if status == 401:
        if "scope" in lowered:
            return GhlScopeError(message, **kw)
        return GhlAuthError(message, **kw)
    if status == 403:
        return GhlScopeError(message, **kw)
    if status == 404:
        return GhlNotFound(message, **kw)
    if status == 400 and "location is not active" in lowered:
        return GhlLocationInactive(message, **kw)
    if status in (400, 422):
        return GhlValidationError(message, **kw)
    if status >= 500:
        return GhlServerError(message, **kw)
    return GhlError(message, **kw)


def is_invalid_token(error: GhlError) -> bool:
    """A 401 that a fresh access token can cure (not a missing scope)."""
    return isinstance(error, GhlAuthError) and error.status == 401
