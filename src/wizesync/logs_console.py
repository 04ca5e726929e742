"""`LOG_FORMAT=console`: log lines for a person at a terminal.

Time, level and message in aligned columns, coloured when stderr is a terminal (rich decides: a
pipe or a file gets the same columns without colour), the logger's short name before the
message, and the event in context and the record's extras after it as `key=value`. The same
redaction as the JSON lines: nothing here may show a secret the JSON would hide.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text

from wizesync.logs import _STANDARD_ATTRS, EVENT_CONTEXT, redact, redact_text

# Shown once as the line's prefix instead of `logger=`: the package name adds nothing.
_PREFIXES = ("wizesync.",)


def _short(name: str) -> str:
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def _value(value: Any) -> str:
    text = str(value)
    return repr(text) if (" " in text or not text) else text


class ConsoleFormatter(logging.Formatter):
    """`logger  message  key=value ...`, redacted; time and level are the handler's columns."""

    def format(self, record: logging.LogRecord) -> str:
        extras: dict[str, Any] = dict(EVENT_CONTEXT.get() or {})
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key[0] != "_":
                extras[key] = value
        parts = [f"{_short(record.name):<22}", redact_text(record.getMessage())]
        if extras:
            parts.append(" ".join(f"{k}={_value(v)}" for k, v in redact(extras).items()))
        line = "  ".join(parts)
        if record.exc_info:
            line += "\n" + redact_text(self.formatException(record.exc_info))
        return line


def _milliseconds(moment: datetime) -> Text:
    return Text(moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}")


def console_handler() -> logging.Handler:
    handler = RichHandler(
        console=Console(stderr=True),
        show_path=False,
        markup=False,
        rich_tracebacks=False,  # the formatter prints the traceback, redacted
        log_time_format=_milliseconds,
        omit_repeated_times=False,
    )
    handler.setFormatter(ConsoleFormatter())
    return handler
