"""The two webhook paths in the service's OpenAPI document.

The webhooks are served by `inbox/asgi.py`, outside FastAPI's routing, so FastAPI cannot describe
them; `openapi_paths()` does, and `app.WizesyncApp.openapi()` adds it to the generated document.
"""

from __future__ import annotations

from typing import Any

from wizesync.inbox.webhooks import GHL_PATH, WIZEHIRE_PATH

_PROBLEM = {
    "application/problem+json": {
        "schema": {
            "type": "object",
            "description": "RFC 9457 problem details",
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
            },
            "required": ["type", "title", "status"],
        }
    }
}
_STORED = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {
                "id": {"type": "integer", "description": "the inbox event's id"},
                "status": {
                    "type": "string",
                    "enum": ["queued", "ignored", "quarantined", "duplicate"],
                },
            },
            "required": ["id", "status"],
        }
    }
}
_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "description": "the event, as the sender signed it (at most 1 MiB)",
            }
        }
    },
}


def _header(name: str, description: str, pattern: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "minLength": 1}
    if pattern:
        schema["pattern"] = pattern
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": schema,
    }


def _responses(*extra: tuple[int, str]) -> dict[str, Any]:
    problems = [
        (401, "unsigned, a signature that does not verify, or a stale timestamp"),
        (
            409,
            "the event id was first stored with another body; nothing was stored "
            "(`first_event_id` names the first)",
        ),
        (413, "the body is over `WEBHOOK_MAX_BODY_BYTES`"),
        (415, "not `application/json`"),
        *extra,
        (503, "the database is not answering; retry after `Retry-After` seconds"),
    ]
    return {
        "202": {"description": "stored: queued, ignored or quarantined", "content": _STORED},
        "200": {"description": "a duplicate of an event already stored", "content": _STORED},
        **{
            str(status): {"description": description, "content": _PROBLEM}
            for status, description in problems
        },
    }


def _operation(summary: str, description: str, operation_id: str, **more: Any) -> dict[str, Any]:
    return {
        "post": {
            "tags": ["webhooks"],
            "summary": summary,
            "description": description,
            "operationId": operation_id,
            "requestBody": _BODY,
            **more,
        }
    }


def openapi_paths() -> dict[str, Any]:
    """`paths` entries for `POST /webhooks/wizehire` and `POST /webhooks/ghl`."""
    return {
        WIZEHIRE_PATH: _operation(
            "Wizehire Webhook",
            "Receive a Standard Webhooks-signed Wizehire event (`order.*`, `refund.requested`).",
            "wizehire_webhook_webhooks_wizehire_post",
            parameters=[
                _header("webhook-id", "the event id (deduplicates redeliveries)"),
                _header(
                    "webhook-timestamp",
                    "Unix seconds; more than 5 minutes off is refused",
                    r"^[0-9]+$",
                ),
                _header(
                    "webhook-signature",
                    "space-separated `v1,<base64 HMAC-SHA256 of id.timestamp.body>`",
                    r"^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$",
                ),
            ],
            responses=_responses(
                (422, "the body is not a valid event; it is stored quarantined (`id`, `errors`)")
            ),
        ),
        GHL_PATH: _operation(
            "Ghl Webhook",
            "Receive a GHL webhook signed with `X-GHL-Signature` (Ed25519 over the raw body).",
            "ghl_webhook_webhooks_ghl_post",
            parameters=[
                _header(
                    "x-ghl-signature",
                    "base64 Ed25519 signature of the raw body (GHL's key)",
                    r"^[A-Za-z0-9+/=]+$",
                )
            ],
            responses=_responses(),
        ),
    }
