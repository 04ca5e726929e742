"""The arithmetic of a GHL location's request budget: pure functions of numbers, no I/O.

`ghl/ratelimit.py` applies them under the budget's row lock (its module doc states the rules);
they are apart so each rule can be read and tested on its own. Times are seconds on one clock
(the budget clock), windows in seconds.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from wizesync.ghl.errors import retry_after_seconds

# Slack for timing noise (a late wake-up, latency jitter) between our schedule and GHL's
# counting: 1% of the window, at least 50 ms.
GUARD_FRACTION = 0.01
GUARD_MIN_SECONDS = 0.05
# Disagreements with X-RateLimit-Remaining this small are latency at the window's edge.
REMAINING_TOLERANCE = 2
# Daily budget spent: no calls for this long, then one response tells us where we stand.
DAILY_PAUSE_SECONDS = 3600.0
PRUNE_EVERY = 64
# Slots reserved in one transaction when the window has room (see ratelimit's module doc), and
# how long one reserved ahead counts, as a share of the window (0.5 s of GHL's 10 s).
BATCH = 4
LEASE_FRACTION = 0.05
# "Room": the window, with the batch, at most this share used. Not half: a steady trickle of
# orders keeps a location's window about half used, and there every GHL call took a budget
# transaction of its own (docs/BENCHMARKS.md, "Flows"); above 3/4 every slot is reserved on
# its own, so a burst's end still uses the budget to the full.
AHEAD_MAX_SHARE = 0.75


@dataclass(frozen=True, slots=True)
class RateHeaders:
    """GHL's rate-limit headers of one answer (None: absent or unreadable)."""

    remaining: int | None
    server_max: int | None
    interval_ms: int | None
    daily: int | None

    @classmethod
    def read(cls, headers: Mapping[str, str]) -> RateHeaders:
        """From headers whose names are lower case."""
        return cls(
            remaining=header_int(headers.get("x-ratelimit-remaining")),
            server_max=header_int(headers.get("x-ratelimit-max")),
            interval_ms=header_int(headers.get("x-ratelimit-interval-milliseconds")),
            daily=header_int(headers.get("x-ratelimit-daily-remaining")),
        )

    @property
    def tell_anything(self) -> bool:
        return (
            self.remaining is not None
            or self.daily is not None
            or bool(self.server_max or self.interval_ms)
        )


def effective(
    limit: int, window: float, server_max: int | None, server_window_ms: int | None
) -> tuple[int, float]:
    """Our configured budget, tightened (never loosened) by what GHL announced."""
    if server_max:
        limit = min(limit, server_max)
    if server_window_ms:
        window = max(window, server_window_ms / 1000)
    return max(1, limit), window


def guard(window: float) -> float:
    """The slack added after a window before a slot counts as free again."""
    return max(window * GUARD_FRACTION, GUARD_MIN_SECONDS)


def lease(window: float) -> float:
    """How long a slot reserved ahead counts before it is sent."""
    return max(GUARD_MIN_SECONDS, window * LEASE_FRACTION)


def tighter(headers: RateHeaders, limit: int, window: float) -> bool:
    """Whether an answer's headers say less room than reserving ahead assumed with our `limit`
    and `window`: a smaller limit or longer window than ours, a window GHL counts as (nearly)
    full, or a daily budget near its end. (A window merely past half is not: spare slots given
    back in the middle of the sequence leave a position unused, and at a burst's end one such
    position costs a whole window; the spare ones are used within a quarter of a second
    anyway.)"""
    return bool(
        (headers.server_max and headers.server_max < limit)
        or (headers.interval_ms and headers.interval_ms / 1000 > window)
        or (headers.remaining is not None and headers.remaining < 2 * BATCH)
        or (headers.daily is not None and headers.daily < 4 * BATCH)
    )


def pause_seconds(headers: Mapping[str, str], window: float, interval_ms: int | None) -> float:
    """How long a 429 stops the location: its `Retry-After`, else the longer of our window and
    GHL's announced interval."""
    delay = retry_after_seconds(headers)
    if delay is None:
        delay = max(window, (interval_ms or 0) / 1000)
    return delay


def daily_wait(daily: int | None, daily_at: float | None, now: float) -> float | None:
    """While the day's budget is spent: how long until a call may ask again (else None)."""
    if (
        daily is not None
        and daily <= 0
        and daily_at is not None
        and now < daily_at + DAILY_PAUSE_SECONDS
    ):
        return daily_at + DAILY_PAUSE_SECONDS - now
    return None


def go_time(
    now: float,
    last_go_at: float | None,
    paused_until: float | None,
    floor: float | None,
    window: float,
) -> float:
    """When the next slot may go: not before now, the previous slot or the end of a pause, and
    a window (plus the guard) after `floor`, the time of the request `limit` places back (None
    when there is none)."""
    go = max(now, last_go_at or 0.0, paused_until or 0.0)
    if floor is not None:
        go = max(go, floor + window + guard(window))
    return go


def batch_probe(seq: int, limit: int, daily: int | None) -> int | None:
    """Reserving `BATCH` slots from `seq` on hangs on one earlier slot: the window, with the
    batch, at most `AHEAD_MAX_SHARE` used means the request that many places before the batch's
    last one no longer counts. Its number (negative: there is none, the window has room), or
    None when no batch is reserved at all (a small limit, where a few spare slots would be a
    large share, or a daily budget near its end)."""
    if BATCH < 2 or BATCH > limit // 8 or (daily is not None and daily < 4 * BATCH):
        return None
    return seq + BATCH - 1 - int(limit * AHEAD_MAX_SHARE)


def still_counted(at: float | None, window: float, now: float) -> bool:
    """Whether a request counted until `at` still counts in the window at `now`."""
    return at is not None and at + window + guard(window) > now


def foreign_requests(limit: int, remaining: int, used: int) -> int:
    """How many requests GHL counted beyond the `used` ones our ledger explains (another app
    instance?), past a tolerance for latency at the window's edge; not positive: none."""
    return (limit - remaining) - used - max(REMAINING_TOLERANCE, limit // 50)


def reusable_tail(next_seq: int, released: Collection[int]) -> int:
    """The next sequence number once `released` slots are given back: at the end of the
    sequence their numbers are reused (the rule counts positions, so a hole would keep the next
    slot waiting for nothing)."""
    tail = next_seq
    while tail - 1 in released:
        tail -= 1
    return tail


def prune_below(seq: int, count: int, limit: int, configured_limit: int) -> int | None:
    """Once every `PRUNE_EVERY` slots (when `count` slots from `seq` on cross a multiple): the
    number below which old slots may go (the rule looks back `limit` places; twice the larger
    limit is kept). Else None."""
    if seq and (seq + count - 1) // PRUNE_EVERY != (seq - 1) // PRUNE_EVERY:
        return seq - 2 * max(limit, configured_limit)
    return None


def header_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None
