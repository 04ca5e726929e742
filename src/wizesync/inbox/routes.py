"""`POST /webhooks/wizehire` and `POST /webhooks/ghl`: verify, store and queue, answer fast.

Order of checks: content type (415), size (413), signature and freshness (401), then the body is
stored whatever it holds (queued, ignored or quarantined) before the answer goes out.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from wizesync.db.models import EventStatus, Source
from wizesync.ghl.webhook_events import delivery_timestamp
from wizesync.inbox import ingest
from wizesync.inbox.classify import classify_ghl, classify_wizehire
from wizesync.inbox.signatures import SignatureError
from wizesync.ops import metrics
from wizesync.problems import Problem
from wizesync.state import get_state

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def _reject(source: str, status: int, reason: str, title: str, detail: str) -> Problem:
    metrics.WEBHOOKS.labels(source=source, outcome="rejected", reason=reason).inc()
    log.warning("webhook rejected", extra={"source": source, "outcome": "rejected",
                                           "reason": reason, "detail": detail})
    return Problem(status, title, detail)


async def _read_body(request: Request, source: str, limit: int) -> bytes:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise _reject(source, 415, "content_type", "Unsupported Media Type",
                      "webhooks must be sent as application/json")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _reject(source, 413, "too_large", "Content Too Large",
                      f"body over {limit} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _reject(source, 413, "too_large", "Content Too Large",
                              f"body over {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        # The sender hung up mid-body: nothing to store and no one to answer; not a 500.
        raise _reject(source, 400, "client_disconnected", "Bad Request",
                      "the client disconnected before the body was complete") from None
    return b"".join(chunks)


def _answer(source: str, stored: ingest.Stored, errors: list[dict[str, str]]) -> JSONResponse:
    if stored.duplicate:
        return JSONResponse({"id": stored.id, "status": "duplicate"}, status_code=200)
    if stored.status == EventStatus.QUARANTINED and source == Source.WIZEHIRE:
        # Wizehire can fix and resend; the event is stored quarantined all the same.
        return Problem(
            422,
            "Unprocessable Content",
            "the event does not match its schema; it is stored quarantined",
            errors=errors,
            extra={"id": stored.id},
        ).response()
    return JSONResponse({"id": stored.id, "status": stored.status.value}, status_code=202)


@router.post("/wizehire", status_code=202, responses={
    200: {"description": "duplicate"}, 401: {}, 413: {}, 415: {}, 422: {}, 503: {}})
async def wizehire_webhook(request: Request) -> Any:
    """Receive a Standard Webhooks-signed Wizehire event (`order.*`, `refund.requested`)."""
    # The state is read here, not injected: a dependency costs FastAPI a resolution pass on
    # every webhook (and a thread hand-off if it were a plain function) for an attribute lookup.
    state = get_state(request)
    source = Source.WIZEHIRE.value
    body = await _read_body(request, source, state.settings.webhook_max_body_bytes)
    try:
        event_id = state.wizehire_verifier.verify(body, request.headers)
    except SignatureError as exc:
        raise _reject(source, 401, exc.reason, "Unauthorized", str(exc)) from None
    classified = classify_wizehire(body)
    stored = await ingest.store(
        state.sessionmaker, source=source, event_id=event_id[:255], raw_body=body,
        classified=classified,
    )
    if not stored.duplicate and stored.status == EventStatus.QUEUED:
        state.wake_worker()
    return _answer(source, stored, classified.errors)


@router.post("/ghl", status_code=202, responses={
    200: {"description": "duplicate"}, 401: {}, 413: {}, 415: {}, 503: {}})
async def ghl_webhook(request: Request) -> Any:
    """Receive a GHL webhook signed with `X-GHL-Signature` (Ed25519 over the raw body)."""
    state = get_state(request)
    source = Source.GHL.value
    body = await _read_body(request, source, state.settings.webhook_max_body_bytes)
    try:
        state.ghl_verifier.verify(body, request.headers)
    except SignatureError as exc:
        raise _reject(source, 401, exc.reason, "Unauthorized", str(exc)) from None
    classified, _ = classify_ghl(body)
    stamp = delivery_timestamp(classified.payload)
    if stamp is not None:
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        skew = abs((datetime.now(UTC) - stamp).total_seconds())
        if skew > state.settings.webhook_timestamp_tolerance_seconds:
            raise _reject(source, 401, "stale_timestamp", "Unauthorized",
                          f"timestamp is {int(skew)} s away from now")
    payload = classified.payload if isinstance(classified.payload, dict) else {}
    webhook_id = payload.get("webhookId")
    event_id = (
        str(webhook_id)[:255] if webhook_id else "sha256:" + hashlib.sha256(body).hexdigest()
    )
    stored = await ingest.store(
        state.sessionmaker, source=source, event_id=event_id, raw_body=body,
        classified=classified,
    )
    if not stored.duplicate and stored.status == EventStatus.QUEUED:
        state.wake_worker()
    return _answer(source, stored, classified.errors)
