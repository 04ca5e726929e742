"""JSON-lines logging with the event in context, and secrets redacted wherever they appear."""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# Set by the worker around an attempt, so every line logged inside a handler names its event.
EVENT_CONTEXT: ContextVar[dict[str, Any] | None] = ContextVar("wizesync_event", default=None)

_SECRET_KEYS = re.compile(
    r"(secret|token|password|passwd|authorization|signature|api[_-]?key|cookie|refresh|code)",
    re.I,
)
_SECRET_VALUES = [
    re.compile(r"(Bearer\s+)[A-Za-z0-9\-._~+/=]+", re.I),
    re.compile(r"whsec_[A-Za-z0-9+/=]+"),
    re.compile(r"(v1,)[A-Za-z0-9+/=]{20,}"),
    re.compile(r"((?:access|refresh)_token[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+", re.I),
    re.compile(r"(client_secret[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+", re.I),
    re.compile(r"(://[^:/@\s]+:)[^@\s]+(@)"),  # passwords in URLs
    # OAuth callback query strings (access logs at DEBUG): the code is a credential.
    re.compile(r"([?&](?:code|state)=)[^&\s\"']+"),
]
# Something every pattern above needs (case-insensitive, so a superset): most log strings have
# none of it and skip the seven substitutions, which cost more than the rest of a log line.
_MAYBE_SECRET = re.compile(r"bearer|whsec_|v1,|token|client_secret|://|[?&](?:code|state)=", re.I)
REDACTED = "[redacted]"
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured copy of `msg`
}


def redact_text(text: str) -> str:
    if not _MAYBE_SECRET.search(text):
        return text
    for pattern in _SECRET_VALUES:
        text = pattern.sub(
            lambda m: (m.group(1) if m.lastindex else "") + REDACTED
            + (m.group(2) if m.lastindex and m.lastindex >= 2 else ""),
            text,
        )
    return text


def redact(value: Any, key: str = "") -> Any:
    if key and _SECRET_KEYS.search(key) and not isinstance(value, (int, float, bool)):
        return REDACTED if value is not None else None
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(EVENT_CONTEXT.get() or {})
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(redact(entry), default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own loggers go through the same JSON handler.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # aiosqlite logs every cursor operation at DEBUG: noise that would drown the outbound calls.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    if level.upper() != "DEBUG":
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("httpcore").setLevel(logging.WARNING)
