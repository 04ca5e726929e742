"""JSON-lines logging with the event in context, and secrets redacted wherever they appear."""

from __future__ import annotations

import functools
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
    # Passwords in URLs, up to the last `@` before the host (a password may hold `@` itself).
    re.compile(r"(://[^:/@\s]+:)\S*?(@)(?=[^@/\s]*(?:[/?#\s]|$))"),
    re.compile(r"(Basic\s+)[A-Za-z0-9+/=]+", re.I),
    # A bare JWT (an OAuth access token, a GHL location token) wherever it appears.
    re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),
    re.compile(r"(api[_-]?key[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+", re.I),
    # OAuth callback query strings (access logs at DEBUG): the code is a credential.
    re.compile(r"([?&](?:code|state)=)[^&\s\"']+"),
]
# Something every pattern above needs (looked for case-folded, so a superset): most log strings
# have none of it and skip the substitutions, which cost more than the rest of a log line.
# Plain substring tests: a case-insensitive regex alternation costs several times more.
_SECRET_MARKERS = (
    "bearer",
    "whsec_",
    "v1,",
    "token",
    "client_secret",
    "://",
    "code=",
    "state=",
    "basic",
    "eyj",
    "api_key",
    "api-key",
    "apikey",
)


def _maybe_secret(text: str) -> bool:
    # casefold, not lower: the patterns' re.I matching also folds e.g. the long s to "s".
    folded = text.casefold()
    return any(marker in folded for marker in _SECRET_MARKERS)


REDACTED = "[redacted]"
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured copy of `msg`
}


def redact_text(text: str) -> str:
    if not _maybe_secret(text):
        return text
    for pattern in _SECRET_VALUES:
        text = pattern.sub(
            lambda m: (
                (m.group(1) if m.lastindex else "")
                + REDACTED
                + (m.group(2) if m.lastindex and m.lastindex >= 2 else "")
            ),
            text,
        )
    return text


@functools.lru_cache(maxsize=4096)
def _is_secret_key(key: str) -> bool:
    # Keys repeat (the same extras on every line): the regex runs once per distinct key.
    return _SECRET_KEYS.search(key) is not None


def redact(value: Any, key: str = "") -> Any:
    if key and _is_secret_key(key) and not isinstance(value, (int, float, bool)):
        return REDACTED if value is not None else None
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


_FLAT = (str, int, float, bool, type(None))


def _plain(entry: dict[str, Any]) -> bool:
    """No secret-looking key and no nested value: redaction can only be about the text."""
    return all(type(value) in _FLAT and not _is_secret_key(key) for key, value in entry.items())


class JsonFormatter(logging.Formatter):
    # The second a line was logged in, formatted once per second (the ts prefix).
    _second = -1
    _second_text = ""

    def _timestamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second_text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = second
        return f"{self._second_text}.{int((created - second) * 1000):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(EVENT_CONTEXT.get() or {})
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key[0] != "_":
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        if _plain(entry):
            # One search over the whole line instead of one per value: JSON escapes nothing a
            # secret pattern is made of, so a secret in any value is still in the line. Almost
            # every line (one per webhook stored) has none and is done here.
            line = json.dumps(entry, default=str)
            if not _maybe_secret(line):
                return line
        return json.dumps(redact(entry), default=str)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """JSON lines on stderr; `fmt="console"`: aligned, coloured lines for a terminal
    (`logs_console.py`)."""
    if fmt == "console":
        from wizesync.logs_console import console_handler

        handler = console_handler()
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # What a record would gather for nobody: the JSON lines hold no source file, line, thread or
    # process (the logging HOWTO's "Optimization"); finding the caller alone walks the stack on
    # every line, a webhook's included.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
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
    # Start-up stays quiet: alembic announces its plugins and its dialect at INFO on every start;
    # the migrations it runs ("Running upgrade ...") are still said.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    quiet = logging.getLogger("alembic.runtime.migration")
    if not any(isinstance(f, _AlembicChatter) for f in quiet.filters):
        quiet.addFilter(_AlembicChatter())


class _AlembicChatter(logging.Filter):
    _NOISE = ("Context impl ", "Will assume ")

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or not str(record.msg).startswith(self._NOISE)
