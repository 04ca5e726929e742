"""The JSON formatter's fast path (flat lines checked once for secrets): same lines as before."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from wizesync.logs import JsonFormatter, redact


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("wizesync.test", logging.INFO, __file__, 1, msg, None, None)
    record.__dict__.update(extra)
    return record


@pytest.mark.parametrize(
    "extra",
    [
        {"detail": "Authorization: Bearer abc.def.ghi"},
        {"detail": "secret whsec_QUJDREVGR0hJSktMTU5PUA=="},
        {"url": "postgresql://user:hunter2@db/x"},
        {"token": "plain-value"},
        {"client_secret": None},
        {"nested": {"password": "p", "ok": "v"}},
        {"items": ["Bearer xyz", 3]},
        {"inbox_id": 7, "outcome": "accepted", "type": "order.created"},
    ],
)
def test_a_line_is_what_full_redaction_gives(extra: dict[str, object]) -> None:
    line = json.loads(JsonFormatter().format(_record("webhook stored", **extra)))
    for key, value in extra.items():
        assert line[key] == json.loads(json.dumps(redact(value, key), default=str))
    assert "hunter2" not in json.dumps(line) and "abc.def" not in json.dumps(line)


def test_a_secret_in_the_message_is_redacted() -> None:
    line = json.loads(JsonFormatter().format(_record("calling with Bearer abc123")))
    assert line["msg"] == "calling with Bearer [redacted]"


def test_timestamp_is_utc_iso_with_milliseconds() -> None:
    record = _record("x")
    record.created = 1_764_288_000.1234
    stamp = json.loads(JsonFormatter().format(record))["ts"]
    assert stamp == datetime.fromtimestamp(1_764_288_000.1234, UTC).isoformat(
        timespec="milliseconds"
    )
    assert stamp.endswith(".123+00:00")
