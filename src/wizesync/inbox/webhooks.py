"""`POST /webhooks/wizehire` and `POST /webhooks/ghl`: verify, store and queue, answer fast.

Order of checks: content type (415), size (413), signature and freshness (401), then the body is
stored whatever it holds (queued, ignored or quarantined) before the answer goes out.

This module is the webhooks' one implementation of those checks and answers, free of any web
framework: it takes headers and bytes and gives an `Answer` or raises a `Problem`. Its one
adapter, `inbox/asgi.py`, reads the request from ASGI messages and writes the answer; the OpenAPI
document describes both paths from `inbox/webhook_docs.py`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wizesync.db.models import EventStatus, Source
from wizesync.ghl.webhook_events import delivery_timestamp
from wizesync.inbox import ingest
from wizesync.inbox.classify import classify_ghl, classify_wizehire, fit
from wizesync.inbox.signatures import SignatureError
from wizesync.ops import metrics
from wizesync.problems import Problem
from wizesync.state import AppState

log = logging.getLogger(__name__)
WIZEHIRE_PATH, GHL_PATH = "/webhooks/wizehire", "/webhooks/ghl"


@dataclass(frozen=True, slots=True)
class Answer:
    """A webhook's successful answer: JSON, status 200 (duplicate), 202 or 422 (problem+json)."""

    status: int
    content: dict[str, Any]
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _reject(source: str, status: int, reason: str, title: str, detail: str) -> Problem:
    metrics.WEBHOOKS.labels(source=source, outcome="rejected", reason=reason).inc()
    log.warning(
        "webhook rejected",
        extra={"source": source, "outcome": "rejected", "reason": reason, "detail": detail},
    )
    return Problem(status, title, detail)


def check_headers(source: str, headers: Mapping[str, str], limit: int) -> None:
    """415 unless JSON; 413 when the declared length is over `limit` (before reading a byte)."""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise _reject(
            source,
            415,
            "content_type",
            "Unsupported Media Type",
            "webhooks must be sent as application/json",
        )
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(source, limit)


def too_large(source: str, limit: int) -> Problem:
    return _reject(source, 413, "too_large", "Content Too Large", f"body over {limit} bytes")


def client_disconnected(source: str) -> Problem:
    # The sender hung up mid-body: nothing to store and no one to answer; not a 500.
    return _reject(
        source,
        400,
        "client_disconnected",
        "Bad Request",
        "the client disconnected before the body was complete",
    )


def _answer(source: str, stored: ingest.Stored, errors: list[dict[str, str]]) -> Answer:
    if stored.conflict:
        problem = Problem(
            409,
            "Conflict",
            f"this event id was first stored as event {stored.id} with a different body; "
            "send a changed event under a new id",
            extra={"first_event_id": stored.id},
        )
        return Answer(409, problem.content(), "application/problem+json")
    if stored.duplicate:
        return Answer(200, {"id": stored.id, "status": "duplicate"})
    if stored.status == EventStatus.QUARANTINED and source == Source.WIZEHIRE:
        # Wizehire can fix and resend; the event is stored quarantined all the same.
        problem = Problem(
            422,
            "Unprocessable Content",
            "the event does not match its schema; it is stored quarantined",
            errors=errors,
            extra={"id": stored.id},
        )
        return Answer(422, problem.content(), "application/problem+json")
    return Answer(202, {"id": stored.id, "status": stored.status.value})


async def accept_wizehire(state: AppState, headers: Mapping[str, str], body: bytes) -> Answer:
    """A Standard Webhooks-signed Wizehire event: verified (else 401), classified, stored."""
    source = Source.WIZEHIRE.value
    try:
        event_id = state.wizehire_verifier.verify(body, headers)
    except SignatureError as exc:
        raise _reject(source, 401, exc.reason, "Unauthorized", str(exc)) from None
    classified = classify_wizehire(body)
    stored = await ingest.store(
        state.sessionmaker,
        source=source,
        event_id=fit(event_id),
        raw_body=body,
        classified=classified,
    )
    if not stored.duplicate and stored.status == EventStatus.QUEUED:
        state.wake_worker()
    return _answer(source, stored, classified.errors)


async def accept_ghl(state: AppState, headers: Mapping[str, str], body: bytes) -> Answer:
    """A GHL webhook signed with `X-GHL-Signature`: verified and fresh (else 401), stored."""
    source = Source.GHL.value
    try:
        state.ghl_verifier.verify(body, headers)
    except SignatureError as exc:
        raise _reject(source, 401, exc.reason, "Unauthorized", str(exc)) from None
    classified, _ = classify_ghl(body)
    stamp = delivery_timestamp(classified.readable)
    if stamp is None and state.settings.is_production:
        # Without a timestamp there is no freshness to check: a captured delivery could be
        # replayed for ever (the dedupe ledger is pruned by retention). GHL stamps every one.
        raise _reject(
            source,
            401,
            "missing_timestamp",
            "Unauthorized",
            "the body has no readable `timestamp`; its freshness cannot be checked",
        )
    if stamp is not None:
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        skew = abs((datetime.now(UTC) - stamp).total_seconds())
        if skew > state.settings.webhook_timestamp_tolerance_seconds:
            raise _reject(
                source,
                401,
                "stale_timestamp",
                "Unauthorized",
                f"timestamp is {int(skew)} s away from now",
            )
    payload = classified.readable if isinstance(classified.readable, dict) else {}
    webhook_id = payload.get("webhookId")
    event_id = fit(str(webhook_id)) if webhook_id else "sha256:" + hashlib.sha256(body).hexdigest()
    settle = state.settings.ghl_webhook_settle_seconds
    stored = await ingest.store(
        state.sessionmaker,
        source=source,
        event_id=event_id,
        raw_body=body,
        classified=classified,
        delay_seconds=settle,
    )
    if not stored.duplicate and stored.status == EventStatus.QUEUED:
        state.wake_worker(settle)  # when it falls due: waking now would find nothing
    return _answer(source, stored, classified.errors)


Acceptor = Callable[[AppState, Mapping[str, str], bytes], Awaitable[Answer]]
# Path -> (source, acceptor): the webhooks `inbox/asgi.py` serves, for POST only.
WEBHOOKS: dict[str, tuple[str, Acceptor]] = {
    WIZEHIRE_PATH: (Source.WIZEHIRE.value, accept_wizehire),
    GHL_PATH: (Source.GHL.value, accept_ghl),
}
