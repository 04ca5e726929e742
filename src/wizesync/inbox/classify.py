"""From an authentic raw body to what the inbox stores: type, status, ordering key, payload.

Nothing here raises on bad input: an unparseable body becomes a quarantined event with the
reasons, so what was authenticated is always stored. What reaches the database is bounded and
storable on both databases whatever the body holds: the payload is parsed by pydantic-core's JSON
parser (it refuses NaN/Infinity, lone surrogates and nesting past 200 levels, without Python
recursion), numbers that overflow to infinity and NUL characters (PostgreSQL's JSONB and text
hold neither) quarantine the event with `payload` null, and ids and keys longer than their
columns are shortened deterministically (`fit`). The raw bytes are always kept as received.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from wizesync.db.models import EventStatus
from wizesync.ghl.webhook_events import GHL_EVENT_MODELS
from wizesync.wizehire.events import WIZEHIRE_EVENT_MODELS

UNKNOWN_TYPE = "unknown"
ID_LENGTH = 255  # inbox_events.event_id and .ordering_key
TYPE_LENGTH = 100  # inbox_events.type
_DIGEST_MARK = "#sha256:"


@dataclass(frozen=True)
class Classified:
    type: str
    status: EventStatus
    payload: Any
    ordering_key: str | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    # The body as JSON when it parsed but cannot be stored (`payload` is then None): what the
    # GHL route still reads its `timestamp` and `webhookId` from. Never stored.
    document: Any = None

    @property
    def readable(self) -> Any:
        """The body as JSON, stored or not (None when it is not JSON)."""
        return self.payload if self.document is None else self.document

    @property
    def error_summary(self) -> str | None:
        if not self.errors:
            return None
        return "; ".join(f"{e['loc']}: {e['msg']}" for e in self.errors)[:2000]


def fit(value: str, limit: int = ID_LENGTH) -> str:
    """`value` when a text column of `limit` characters can hold it, else a deterministic
    stand-in of exactly `limit` characters: a readable prefix and the sha256 of the whole value
    (so two different long ids never meet, and one id always maps to the same key). A NUL, which
    PostgreSQL's text cannot hold, also takes the digest form."""
    if len(value) <= limit and "\x00" not in value:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    keep = max(0, limit - len(_DIGEST_MARK) - len(digest))
    return printable(value[:keep]).replace("\x00", "")[:keep] + _DIGEST_MARK + digest


def printable(text: str) -> str:
    """Text any database column stores: NULs and lone surrogates written as escapes."""
    if text.isascii() and "\x00" not in text:
        return text
    return text.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")


def _quarantined(
    reason: str, payload: Any = None, *, loc: str = "body", event_type: str = UNKNOWN_TYPE
) -> Classified:
    return Classified(
        event_type, EventStatus.QUARANTINED, payload, errors=[{"loc": loc, "msg": reason}]
    )


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {
            "loc": printable(".".join(str(p) for p in err["loc"]) or "body"),
            "msg": printable(err["msg"]),
        }
        for err in exc.errors(include_url=False)
    ]


def _scan(payload: Any, nul_possible: bool) -> tuple[str | None, bool]:
    """(why the parsed payload cannot be stored as JSON on PostgreSQL or None, whether it holds
    a float). Iterative: the parser bounds the depth, but the walk needs no recursion at all.
    Strings are looked into only when the body holds the escape `\\u0000` (the parser refuses
    a raw control character, so that escape is the only way a NUL gets in)."""
    stack, floats = [payload], False
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is dict:
            if nul_possible and any("\x00" in key for key in node):
                return "a key holds a NUL character (\\u0000)", floats
            stack.extend(node.values())
        elif kind is list:
            stack.extend(node)
        elif kind is float:
            if not math.isfinite(node):
                return "a number is out of range (it overflows to infinity)", True
            floats = True
        elif kind is str and nul_possible and "\x00" in node:
            return "a string holds a NUL character (\\u0000)", floats
    return None, floats


def parse_body(body: bytes) -> tuple[Any, str | None, bool]:
    """(payload, None, whether it holds a float), or (None, why the body is not storable JSON,
    False)."""
    try:
        payload = from_json(body, allow_inf_nan=False)
    except (ValueError, RecursionError) as exc:
        return None, f"body is not JSON: {printable(str(exc))}", False
    why, floats = _scan(payload, b"\\u0000" in body)
    if why is not None:
        return None, f"body cannot be stored as JSON: {why}", False
    return payload, None, floats


def _exact(body: bytes) -> Any:
    """The body with every JSON number as an exact Decimal or int (money is never a float):
    `149.000000000000000000000000000001` stays what was sent, and fails the model's limits."""
    return json.loads(body, parse_float=Decimal)


def _classify(
    body: bytes, models: dict[str, type[BaseModel]], *, exact_numbers: bool
) -> tuple[Classified, Any]:
    payload, why, floats = parse_body(body)
    if why is not None:
        document = _document(body) if why.startswith("body cannot be stored") else None
        quarantined = _quarantined(why, event_type=_type_of(document))
        return replace(quarantined, document=document), None
    if not isinstance(payload, dict):
        return _quarantined("body must be a JSON object", payload), None
    event_type = payload.get("type")
    if not isinstance(event_type, str) or not event_type:
        return _quarantined("field required: the event type", payload, loc="type"), None
    event_type = printable(event_type)[:TYPE_LENGTH]
    model = models.get(event_type)
    if model is None:
        return Classified(event_type, EventStatus.IGNORED, payload), None
    try:
        if exact_numbers and floats:
            # A float in the payload was a JSON number with a fraction or an exponent: parsed
            # again exactly. Without one, the JSON parse below is exact already (ints are).
            parsed = model.model_validate(_exact(body))
        else:
            parsed = model.model_validate_json(body)
    except ValidationError as exc:
        return (
            Classified(event_type, EventStatus.QUARANTINED, payload, errors=_field_errors(exc)),
            None,
        )
    except (ValueError, RecursionError) as exc:  # the exact parse refused what jiter took
        return _quarantined(f"body is not JSON: {printable(str(exc))}", event_type=event_type), None
    key = getattr(parsed, "ordering_key", None)
    return (
        Classified(
            event_type,
            EventStatus.QUEUED,
            payload,
            ordering_key=fit(key) if key is not None else None,
        ),
        parsed,
    )


def _document(body: bytes) -> Any:
    """A body that parsed but cannot be stored, parsed again by the standard library (which
    takes what the database cannot hold: infinities, NULs)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _type_of(document: Any) -> str:
    """The event type of a body that parsed but cannot be stored, for the operator's list."""
    event_type = document.get("type") if isinstance(document, dict) else None
    if not isinstance(event_type, str) or not event_type:
        return UNKNOWN_TYPE
    return printable(event_type)[:TYPE_LENGTH]


def classify_wizehire(body: bytes) -> Classified:
    return _classify(body, WIZEHIRE_EVENT_MODELS, exact_numbers=True)[0]  # type: ignore[arg-type]


def classify_ghl(body: bytes) -> tuple[Classified, Any]:
    """Also returns the parsed event (or None), whose `timestamp` the route checks."""
    return _classify(body, GHL_EVENT_MODELS, exact_numbers=False)  # type: ignore[arg-type]
