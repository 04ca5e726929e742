"""The query of `/insights/revenue` (and the page's filter form): parsed and checked once.

- `since`, `until`: ISO-8601. A date-time is taken exactly (no zone = UTC); a date `since` is that
  day's start, a date `until` is INCLUSIVE (the window ends at the next day's start), so
  `since=2026-11-01&until=2026-11-30` is all of November. Defaults: `until` = the end of today
  (UTC), `since` = 30 days before it; whole days keep repeated requests on one cached reading.
- `interval`: `day` (default), `week` or `month`; at most `MAX_PERIODS` periods.
- `currency`: three letters, any case; default: the most used (see `figures`).
Invalid input is a 422 problem naming each field, as FastAPI's own validation answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from wizesync.insights.figures import INTERVALS, Interval, Window, count_periods
from wizesync.problems import Problem

DEFAULT_DAYS = 30
MAX_PERIODS = 1000
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")


@dataclass(frozen=True)
class RevenueQuery:
    window: Window
    currency: str | None

    @property
    def since(self) -> datetime:
        return self.window.since

    @property
    def until(self) -> datetime:
        return self.window.until

    @property
    def interval(self) -> Interval:
        return self.window.interval


def parse_query(
    since: str | None,
    until: str | None,
    interval: str | None,
    currency: str | None,
    *,
    now: datetime | None = None,
) -> RevenueQuery:
    errors: list[dict[str, str]] = []
    start = end = None
    try:
        end = _moment(until, inclusive_day=True) if until else None
    except ValueError:
        errors.append({"loc": "query.until", "msg": "not an ISO-8601 date or date-time"})
    try:
        start = _moment(since, inclusive_day=False) if since else None
    except ValueError:
        errors.append({"loc": "query.since", "msg": "not an ISO-8601 date or date-time"})
    chosen = (interval or "day").lower()
    if chosen not in INTERVALS:
        errors.append({"loc": "query.interval", "msg": "must be one of: day, week, month"})
    code = (currency or "").strip()
    if code and not _CURRENCY.match(code):
        errors.append({"loc": "query.currency", "msg": "must be a three-letter currency code"})
    if errors:
        raise _invalid(errors)
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    end = end or datetime.combine(today + timedelta(days=1), time(), UTC)
    start = start or end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise _invalid([{"loc": "query.since", "msg": "must be before until"}])
    window = Window(since=start, until=end, interval=chosen)  # type: ignore[arg-type]
    if count_periods(window) > MAX_PERIODS:
        raise _invalid(
            [
                {
                    "loc": "query.interval",
                    "msg": f"the window has more than {MAX_PERIODS} periods of a "
                    f"{chosen}: choose a longer interval or a shorter window",
                }
            ]
        )
    return RevenueQuery(window=window, currency=code.upper() or None)


def _moment(text: str, *, inclusive_day: bool) -> datetime:
    text = text.strip()
    if len(text) == 10:  # a date
        day = date.fromisoformat(text)
        return datetime.combine(day + timedelta(days=1 if inclusive_day else 0), time(), UTC)
    if "T" in text and " " in text:  # an unencoded "+01:00" arrives as " 01:00"
        text = text.replace(" ", "+")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _invalid(errors: list[dict[str, str]]) -> Problem:
    return Problem(422, "Unprocessable Content", "the request is invalid", errors=errors)
