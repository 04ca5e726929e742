"""From an authentic raw body to what the inbox stores: type, status, ordering key, payload.

Nothing here raises on bad input: an unparseable body becomes a quarantined event with the
reasons, so what was authenticated is always stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from wizesync.db.models import EventStatus
from wizesync.ghl.webhook_events import GHL_EVENT_MODELS
from wizesync.wizehire.events import WIZEHIRE_EVENT_MODELS

UNKNOWN_TYPE = "unknown"


@dataclass(frozen=True)
class Classified:
    type: str
    status: EventStatus
    payload: Any
    ordering_key: str | None = None
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def error_summary(self) -> str | None:
        if not self.errors:
            return None
        return "; ".join(f"{e['loc']}: {e['msg']}" for e in self.errors)[:2000]


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"loc": ".".join(str(p) for p in err["loc"]) or "body", "msg": err["msg"]}
        for err in exc.errors(include_url=False)
    ]


def _classify(body: bytes, models: dict[str, type[BaseModel]]) -> tuple[Classified, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        error = {"loc": "body", "msg": f"body is not JSON: {exc}"}
        return Classified(UNKNOWN_TYPE, EventStatus.QUARANTINED, None, errors=[error]), None
    if not isinstance(payload, dict):
        error = {"loc": "body", "msg": "body must be a JSON object"}
        return Classified(UNKNOWN_TYPE, EventStatus.QUARANTINED, payload, errors=[error]), None
    event_type = payload.get("type")
    if not isinstance(event_type, str) or not event_type:
        error = {"loc": "type", "msg": "field required: the event type"}
        return Classified(UNKNOWN_TYPE, EventStatus.QUARANTINED, payload, errors=[error]), None
    event_type = event_type[:100]
    model = models.get(event_type)
    if model is None:
        return Classified(event_type, EventStatus.IGNORED, payload), None
    try:
        parsed = model.model_validate_json(body)
    except ValidationError as exc:
        return (
            Classified(event_type, EventStatus.QUARANTINED, payload, errors=_field_errors(exc)),
            None,
        )
    key = getattr(parsed, "ordering_key", None)
    return Classified(event_type, EventStatus.QUEUED, payload, ordering_key=key), parsed


def classify_wizehire(body: bytes) -> Classified:
    return _classify(body, WIZEHIRE_EVENT_MODELS)[0]  # type: ignore[arg-type]


def classify_ghl(body: bytes) -> tuple[Classified, Any]:
    """Also returns the parsed event (or None), whose `timestamp` the route checks."""
    return _classify(body, GHL_EVENT_MODELS)  # type: ignore[arg-type]
