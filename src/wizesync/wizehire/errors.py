"""Typed Wizehire API failures, each with the HTTP status and Wizehire's own words (`detail`).

Callers branch on the class, never on the text. `transient` says whether waiting can help, so a
flow maps a failure to retry-later (the worker reschedules) or to dead (a human fixes the data).
Error bodies are read tolerantly: RFC 9457 problems (`title`, `detail`, `errors`), the
`{error, message, errors}` shape, or plain text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx

# When a 429 carries no Retry-After, wait this long before the next try.
DEFAULT_RATE_LIMIT_DELAY = 5.0


class WizehireError(Exception):
    """Base class: `status` is the HTTP status (None when no answer came), `detail` the reason in
    Wizehire's words, `code` its machine-readable error name when it sent one."""

    transient: ClassVar[bool] = False

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        code: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.code = code
        self.errors: list[dict[str, Any]] = errors or []
        self.retry_after = retry_after  # seconds, from the answer's Retry-After header
        self.attempts = 1  # set by the client to how many times the request was sent

    def __str__(self) -> str:
        parts = [self.detail]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.code:
            parts.append(f"code={self.code}")
        if self.attempts > 1:
            parts.append(f"attempts={self.attempts}")
        return " ".join(parts)


class WizehireAuthError(WizehireError):
    """401/403, or the token endpoint refused the client credentials: a configuration problem."""


class WizehireNotFound(WizehireError):
    """404: Wizehire does not know the order or refund."""


class WizehireValidationError(WizehireError):
    """400/422: Wizehire refused the request; `errors` holds the field errors `[{loc, msg}]`.
    `code == "idempotency_key_reused"` means the key was sent before with another body."""

    def field_messages(self) -> list[str]:
        return [
            f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg', '')}".lstrip(": ")
            for e in self.errors
        ]

    def __str__(self) -> str:
        text = super().__str__()
        fields = self.field_messages()
        return f"{text} ({'; '.join(fields)})" if fields else text


class WizehireRateLimited(WizehireError):
    """429. `delay` is how long Wizehire asked to wait (Retry-After)."""

    transient = True

    def __init__(self, detail: str, *, delay: float = DEFAULT_RATE_LIMIT_DELAY, **kw: Any) -> None:
        super().__init__(detail, **kw)
        self.delay = delay if self.retry_after is None else self.retry_after


class WizehireConflict(WizehireError):
    """409: a request with the same Idempotency-Key is still being processed (IETF idempotency
    draft); the same request is safe to send again shortly."""

    transient = True


class WizehireServerError(WizehireError):
    """5xx."""

    transient = True


class WizehireUnavailable(WizehireError):
    """No answer at all: the connection failed or timed out (on every attempt)."""

    transient = True


class WizehireBadResponse(WizehireError):
    """A 2xx whose body is not what the contract promises (or a cursor that loops): asking again
    gets the same answer, so it is not retried."""


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` as seconds (it may be a number or an HTTP date); None when absent/unusable."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _field_errors(raw: Any) -> list[dict[str, Any]]:
    """Field errors as `[{loc: [...], msg}]`, from a list of such objects or a {field: msg} map."""
    found: list[dict[str, Any]] = []
    if isinstance(raw, dict):
        raw = [{"loc": [k], "msg": v} for k, v in raw.items()]
    if not isinstance(raw, list):
        return found
    for item in raw:
        if isinstance(item, dict):
            loc = item.get("loc", item.get("field", item.get("path", [])))
            loc = loc if isinstance(loc, list) else [loc] if loc not in (None, "") else []
            msg = item.get("msg", item.get("message", item.get("detail", "")))
            found.append({"loc": loc, "msg": str(msg)})
        else:
            found.append({"loc": [], "msg": str(item)})
    return found


def parse_error_body(content: bytes) -> tuple[str | None, str | None, list[dict[str, Any]]]:
    """(detail, code, field errors) from whatever error body Wizehire sent."""
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = content.decode("utf-8", errors="replace").strip()[:300] if content else ""
        return text or None, None, []
    detail = next(
        (
            str(body[k])
            for k in ("detail", "message", "title", "error_description")
            if isinstance(body.get(k), str) and body[k]
        ),
        None,
    )
    code = body.get("error", body.get("code"))
    code = str(code) if isinstance(code, str | int) and code != "" else None
    return detail or code, code, _field_errors(body.get("errors"))


def error_from_response(response: httpx.Response) -> WizehireError:
    """The typed exception for a non-2xx Wizehire answer."""
    status = response.status_code
    detail, code, errors = parse_error_body(response.content)
    detail = detail or response.reason_phrase or f"HTTP {status}"
    kw: dict[str, Any] = {
        "status": status,
        "code": code,
        "errors": errors,
        "retry_after": retry_after_seconds(response.headers),
    }
    if status == 429:
        return WizehireRateLimited(detail, **kw)
    if status in (401, 403):
        return WizehireAuthError(detail, **kw)
    if status == 404:
        return WizehireNotFound(detail, **kw)
    if status == 409:
        return WizehireConflict(detail, **kw)
    if status in (400, 422):
        return WizehireValidationError(detail, **kw)
    if status >= 500:
        return WizehireServerError(detail, **kw)
    return WizehireError(detail, **kw)
