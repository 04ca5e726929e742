"""One request budget per GHL location, shared by every process of a deployment.

GHL allows 100 requests per 10 s per app and location. Every process reserves a numbered slot in
the database under the location's budget row lock; request `n` may start no earlier than
`window` after request `n - limit` (a sliding log: any `window`-long interval then holds at most
`limit` requests). Reservations are made ahead of time and the caller sleeps until its slot, so
waiting costs no database traffic and the budget is used to the full.

A slot's time moves to when its answer came back, so a request that reached GHL late still
counts from when it got there. GHL's headers tighten the budget: a lower `X-RateLimit-Max`, a
longer `X-RateLimit-Interval-Milliseconds`, an `X-RateLimit-Remaining` lower than our own ledger
explains (someone else spends the same app's budget for the location: the difference is booked
as used), the daily budget; a 429 pauses the location for `Retry-After` or the interval.

What `observe` learns is written with this process's next reservation for the location (or
after `FLUSH_AFTER` seconds at the latest), so a call costs one database transaction, not two.
A 429 is written at once: every process must stop.

Reserving ahead: when the window is at most 3/4 used even with them, one transaction reserves
`BATCH` slots that may all go now, and this process hands the spare ones to its next calls for
the location, with no database traffic. A spare slot counts in the shared ledger until `lease`
after it was reserved (so every process sees it and the sliding-log rule holds whenever it is
sent), then, once answered, until its answer like any slot. Compared with X-RateLimit-Remaining,
the spare slots this process still holds are known unsent and left out; other processes' count
as sent (errs towards no booking, like the rest of that comparison). A spare slot is handed out
only during the first half of its lease; one not handed out by then, or when an answer shows
(nearly) no room or a tighter limit (`_tighter`), or at a 429, is released (deleted with this
process's next write for the location: it was never sent). At a busy window, or a small limit,
nothing is reserved ahead: one slot per transaction, so the budget is used to the full.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync.config import Settings
from wizesync.db import rate_budget_repo
from wizesync.db.ghl_models import GhlRateBudget
from wizesync.ghl.errors import GhlRateLimited, retry_after_seconds

log = logging.getLogger(__name__)

# Slack for timing noise (a late wake-up, latency jitter) between our schedule and GHL's
# counting: 1% of the window, at least 50 ms.
GUARD_FRACTION = 0.01
GUARD_MIN_SECONDS = 0.05
# Disagreements with X-RateLimit-Remaining this small are latency at the window's edge.
REMAINING_TOLERANCE = 2
# Daily budget spent: no calls for this long, then one response tells us where we stand.
DAILY_PAUSE_SECONDS = 3600.0
PRUNE_EVERY = 64
FLUSH_AFTER = 0.2
# Slots reserved in one transaction when the window has room (see the module doc), and how long
# one reserved ahead counts, as a share of the window (0.5 s of GHL's 10 s).
BATCH = 4
LEASE_FRACTION = 0.05
# "Room": the window, with the batch, at most this share used. Not half: a steady trickle of
# orders keeps a location's window about half used, and there every GHL call took a budget
# transaction of its own (docs/BENCHMARKS.md, "Flows"); above 3/4 every slot is reserved on
# its own, so a burst's end still uses the budget to the full.
AHEAD_MAX_SHARE = 0.75

# (location, seq, go time, spare?) of the slot this task reserved last: `observe` in the same
# task (acquire, send, observe) finds it.
_RESERVATION: ContextVar[tuple[str, int, float, bool] | None] = ContextVar(
    "ghl_reservation", default=None
)


@dataclass(frozen=True, slots=True)
class Headroom:
    """What `/sync-status` shows of a location's budget."""

    limit: int
    window_seconds: float
    used_in_window: int
    paused_for_seconds: float
    daily_remaining: int | None

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used_in_window)


@dataclass
class _Learned:
    """What answers told us about one location since we last wrote to its budget row."""

    answered: dict[int, float] = field(default_factory=dict)  # slot seq -> answer time
    released: set[int] = field(default_factory=set)  # slots reserved ahead, never sent
    settled: dict[int, float] = field(default_factory=dict)  # spare slot seq -> answer time
    server_max: int | None = None
    server_window_ms: int | None = None
    daily: tuple[int, float] | None = None  # (remaining, when)
    # The latest X-RateLimit-Remaining: (value, from when GHL may count ours, answer time).
    remaining: tuple[int, float, float] | None = None
    pause_until: float | None = None


class DbRateLimiter:
    """`RateLimiter` across processes, over `ghl_rate_budgets` and `ghl_rate_slots`."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self._sessionmaker = sessionmaker
        self._limit = settings.ghl_rate_limit_max
        self._window = settings.ghl_rate_limit_window_seconds
        self._max_wait = settings.ghl_rate_limit_max_wait_seconds
        # One budget transaction at a time per location in this process: the others would only
        # queue on the database row lock, each holding a pooled connection.
        self._locks: dict[str, asyncio.Lock] = {}
        self._learned: dict[str, _Learned] = {}
        self._flushes: dict[str, asyncio.Task[None]] = {}
        # Slots reserved ahead, per location: (seq, go time, hand out before this loop time).
        self._ready: dict[str, deque[tuple[int, float, float]]] = {}
        self._lease = max(GUARD_MIN_SECONDS, self._window * LEASE_FRACTION)
        # The budget clock (the database's on PostgreSQL) minus the event loop's clock.
        self._offset: float | None = None

    async def acquire(self, location_id: str) -> None:
        """Reserve the next slot and sleep until it. Raises `GhlRateLimited` (nothing reserved)
        when the wait would exceed GHL_RATE_LIMIT_MAX_WAIT_SECONDS or the day's budget is out."""
        loop = asyncio.get_running_loop()
        if self._take_ready(location_id):
            return
        async with self._lock(location_id):
            if self._take_ready(location_id):  # reserved ahead while we waited for the lock
                return
            async with self._sessionmaker.begin() as session:
                # `now` is read after the lock was granted: waiting for it took time.
                budget, now = await rate_budget_repo.lock_budget(session, location_id)
                local_now = loop.time()
                self._offset = now - local_now
                view = await self._write_learned(session, location_id, budget)
                reserved = await self._reserve(session, location_id, view, now)
            if isinstance(reserved, GhlRateLimited):
                raise reserved  # after the commit: what was learned is kept
            seq, go, wait, ahead = reserved
            if ahead:
                ready = self._ready.setdefault(location_id, deque())
                hand_out_until = local_now + self._lease / 2
                ready.extend((extra, go, hand_out_until) for extra in range(seq + 1, seq + ahead))
        _RESERVATION.set((location_id, seq, go, False))
        # Until the slot, counted from when `now` was read: the commit took time already.
        remaining = local_now + wait - loop.time()
        if remaining > 0:
            await asyncio.sleep(remaining)

    async def observe(self, location_id: str, status: int, headers: Mapping[str, str]) -> None:
        """Learn from an answer: when it came, GHL's rate-limit headers, a 429."""
        answered_local = asyncio.get_running_loop().time()
        h = {k.lower(): v for k, v in headers.items()}
        remaining = _int(h.get("x-ratelimit-remaining"))
        server_max = _int(h.get("x-ratelimit-max"))
        interval_ms = _int(h.get("x-ratelimit-interval-milliseconds"))
        daily = _int(h.get("x-ratelimit-daily-remaining"))
        if self._ready.get(location_id) and self._tighter(
            remaining, server_max, interval_ms, daily
        ):
            # Reserved ahead on a ledger that did not know this yet: reserve afresh.
            self._release_ready(location_id)
        reservation = _RESERVATION.get()
        mine = reservation is not None and reservation[0] == location_id
        if mine:
            _RESERVATION.set(None)
        if (
            not mine
            and status != 429
            and remaining is None
            and daily is None
            and not (server_max or interval_ms)
        ):
            return
        if self._offset is None:  # no reservation here yet: learn the budget clock first
            await self.flush(location_id)
        assert self._offset is not None
        answered_at = answered_local + self._offset
        learned = self._learned.setdefault(location_id, _Learned())
        if mine:
            assert reservation is not None
            if reservation[3]:
                learned.settled[reservation[1]] = answered_at
            else:
                learned.answered[reservation[1]] = answered_at
        learned.server_max = server_max or learned.server_max
        learned.server_window_ms = interval_ms or learned.server_window_ms
        if daily is not None:
            learned.daily = (daily, answered_at)
        if status == 429:
            self._release_ready(location_id)  # reserved ahead, but GHL says stop
            delay = retry_after_seconds(h)
            if delay is None:
                delay = max(self._window, (interval_ms or 0) / 1000)
            learned.pause_until = max(learned.pause_until or 0.0, answered_at + delay)
            log.warning(
                "GHL answered 429: pausing the location",
                extra={"location_id": location_id, "delay_seconds": delay},
            )
            await self.flush(location_id)  # every process must stop now, not later
            return
        if remaining is not None:
            # GHL counted at some moment between our send and its answer: compare with every
            # request of ours it may have counted then (over-counting errs towards no booking).
            counted_from = reservation[2] if mine and reservation else answered_at
            learned.remaining = (remaining, counted_from, answered_at)
        self._schedule_flush(location_id)

    async def flush(self, location_id: str) -> None:
        """Write what answers taught us now (tests, shutdown; otherwise it rides along)."""
        loop = asyncio.get_running_loop()
        async with self._lock(location_id), self._sessionmaker.begin() as session:
            budget, now = await rate_budget_repo.lock_budget(session, location_id)
            self._offset = now - loop.time()
            view = await self._write_learned(session, location_id, budget)
            if view.changes:
                await rate_budget_repo.update_budget(session, location_id, **view.changes)

    async def close(self) -> None:
        """Write what is pending and stop the timers."""
        for task in list(self._flushes.values()):
            task.cancel()
        for location_id in list(self._ready):
            self._release_ready(location_id)
        for location_id in list(self._learned):
            with contextlib.suppress(Exception):
                await self.flush(location_id)

    # --- internals ----------------------------------------------------------------------------

    def _take_ready(self, location_id: str) -> bool:
        """Use a slot reserved ahead, if one is still within its hand-out time."""
        ready = self._ready.get(location_id)
        if not ready:
            return False
        local_now = asyncio.get_running_loop().time()
        late = []
        while ready and ready[0][2] <= local_now:
            late.append(ready.popleft()[0])  # too late to send it now: give it back
        if late:
            self._learned.setdefault(location_id, _Learned()).released.update(late)
            self._schedule_flush(location_id)
        if not ready:
            return False
        seq, go, _ = ready.popleft()
        assert self._offset is not None  # set by the transaction that reserved it
        # Sent now, not at `go`: what GHL may have counted of ours is measured from here.
        _RESERVATION.set((location_id, seq, max(go, local_now + self._offset), True))
        return True

    def _release_ready(self, location_id: str) -> None:
        """Give back the slots reserved ahead and not handed out (written with the next
        transaction for the location)."""
        ready = self._ready.pop(location_id, None)
        if ready:
            learned = self._learned.setdefault(location_id, _Learned())
            learned.released.update(seq for seq, _, _ in ready)

    def _tighter(
        self,
        remaining: int | None,
        server_max: int | None,
        interval_ms: int | None,
        daily: int | None,
    ) -> bool:
        """Whether an answer's headers say less room than reserving ahead assumed: a smaller
        limit or longer window than ours, a window GHL counts as (nearly) full, or a daily
        budget near its end. (A window merely past half is not: spare slots given back in the
        middle of the sequence leave a position unused, and at a burst's end one such position
        costs a whole window; the spare ones are used within a quarter of a second anyway.)"""
        return bool(
            (server_max and server_max < self._limit)
            or (interval_ms and interval_ms / 1000 > self._window)
            or (remaining is not None and remaining < 2 * BATCH)
            or (daily is not None and daily < 4 * BATCH)
        )

    def _lock(self, location_id: str) -> asyncio.Lock:
        return self._locks.setdefault(location_id, asyncio.Lock())

    def _schedule_flush(self, location_id: str) -> None:
        task = self._flushes.get(location_id)
        if task is None or task.done():
            self._flushes[location_id] = asyncio.create_task(
                self._flush_later(location_id), name=f"ghl budget flush {location_id}"
            )

    async def _flush_later(self, location_id: str) -> None:
        await asyncio.sleep(FLUSH_AFTER)
        if location_id not in self._learned:
            return  # a reservation wrote it meanwhile
        try:
            await self.flush(location_id)
        except Exception as exc:
            log.warning(
                "could not record GHL rate-limit observations",
                exc_info=exc,
                extra={"location_id": location_id},
            )

    async def _write_learned(
        self, session: AsyncSession, location_id: str, budget: GhlRateBudget
    ) -> _View:
        """Under the budget lock: apply what answers taught us; the budget as it now stands."""
        learned = self._learned.pop(location_id, None) or _Learned()
        view = _View(budget, self._limit, self._window)
        if learned.answered:
            await rate_budget_repo.extend_slots(session, location_id, learned.answered)
        if learned.settled:
            await rate_budget_repo.settle_slots(session, location_id, learned.settled)
        if learned.released:
            await rate_budget_repo.release_slots(session, location_id, sorted(learned.released))
            # At the end of the sequence (no reservation since), the numbers are reused: the
            # rule counts positions, so a hole would keep the next slot waiting for nothing.
            tail = view.next_seq
            while tail - 1 in learned.released:
                tail -= 1
            if tail != view.next_seq:
                view.set(next_seq=tail)
        if learned.server_max and learned.server_max != budget.server_max:
            view.set(server_max=learned.server_max)
        if learned.server_window_ms and learned.server_window_ms != budget.server_window_ms:
            view.set(server_window_ms=learned.server_window_ms)
        if learned.daily is not None:
            view.set(daily_remaining=learned.daily[0], daily_observed_at=learned.daily[1])
        if learned.pause_until is not None:
            view.set(paused_until=max(budget.paused_until or 0.0, learned.pause_until))
        if learned.remaining is not None:
            remaining, counted_from, answered_at = learned.remaining
            limit, window = view.limit_window()
            used = await rate_budget_repo.count_slots_in_window(
                session, location_id, counted_from - window, answered_at
            )
            # Our spare slots not handed out yet: GHL cannot have counted them.
            used -= len(self._ready.get(location_id) or ())
            foreign = (limit - remaining) - used - max(REMAINING_TOLERANCE, limit // 50)
            if foreign > 0:
                # Requests we did not make (another app instance?): booked as used from then
                # on; they take sequence numbers, so the next `foreign` reservations wait.
                await rate_budget_repo.add_slots(
                    session, location_id, view.next_seq, [answered_at] * foreign
                )
                view.set(next_seq=view.next_seq + foreign)
                log.info(
                    "GHL reports less headroom than our ledger: booking the difference",
                    extra={"location_id": location_id, "requests": foreign},
                )
        return view

    async def _reserve(
        self, session: AsyncSession, location_id: str, view: _View, now: float
    ) -> tuple[int, float, float, int] | GhlRateLimited:
        """The next slot (seq, go time, wait, how many slots from seq on were reserved), or why
        there is none (nothing reserved)."""
        limit, window = view.limit_window()
        daily, daily_at = view.get("daily_remaining"), view.get("daily_observed_at")
        if (
            daily is not None
            and daily <= 0
            and daily_at is not None
            and now < daily_at + DAILY_PAUSE_SECONDS
        ):
            if view.changes:
                await rate_budget_repo.update_budget(session, location_id, **view.changes)
            return GhlRateLimited(
                f"GHL daily request budget of location {location_id} is spent",
                delay=daily_at + DAILY_PAUSE_SECONDS - now,
            )
        seq = view.next_seq
        go = max(now, view.get("last_go_at") or 0.0, view.get("paused_until") or 0.0)
        if seq >= limit:
            floor = await rate_budget_repo.latest_slot_at(session, location_id, seq - limit)
            if floor is not None:
                go = max(go, floor + window + max(window * GUARD_FRACTION, GUARD_MIN_SECONDS))
        wait = go - now
        if wait > self._max_wait:
            if view.changes:
                await rate_budget_repo.update_budget(session, location_id, **view.changes)
            return GhlRateLimited(
                f"GHL request budget of location {location_id} is booked for the next {wait:.0f} s",
                delay=wait,
            )
        count = (
            await self._room_ahead(session, location_id, seq, limit, window, now, daily)
            if wait <= 0
            else 1
        )
        await rate_budget_repo.add_slots(session, location_id, seq, [go])
        if count > 1:  # counted until the end of their lease: see the module doc
            await rate_budget_repo.add_slots(
                session, location_id, seq + 1, [go] * (count - 1), counted_until=go + self._lease
            )
        view.set(next_seq=seq + count, last_go_at=go)
        if daily is not None:
            view.set(daily_remaining=daily - count)
        await rate_budget_repo.update_budget(session, location_id, **view.changes)
        if seq and (seq + count - 1) // PRUNE_EVERY != (seq - 1) // PRUNE_EVERY:
            await rate_budget_repo.prune_slots(
                session, location_id, seq - 2 * max(limit, self._limit)
            )
        return seq, go, wait, count

    async def _room_ahead(
        self,
        session: AsyncSession,
        location_id: str,
        seq: int,
        limit: int,
        window: float,
        now: float,
        daily: int | None,
    ) -> int:
        """`BATCH` when the window, with that many more requests now, is at most
        `AHEAD_MAX_SHARE` used: the request `room` places before the batch's last one no longer
        counts. Else 1 (also for small limits, where a few spare slots would be a large share)."""
        room = int(limit * AHEAD_MAX_SHARE)
        if BATCH < 2 or BATCH > limit // 8 or (daily is not None and daily < 4 * BATCH):
            return 1
        back = seq + BATCH - 1 - room
        if back >= 0:
            counted = await rate_budget_repo.latest_slot_at(session, location_id, back)
            guard = max(window * GUARD_FRACTION, GUARD_MIN_SECONDS)
            if counted is not None and counted + window + guard > now:
                return 1
        return BATCH


@dataclass
class _View:
    """The budget row plus the changes this transaction makes to it."""

    row: GhlRateBudget
    limit: int
    window: float
    changes: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        return self.changes[name] if name in self.changes else getattr(self.row, name)

    def set(self, **values: Any) -> None:
        self.changes.update(values)

    @property
    def next_seq(self) -> int:
        return int(self.get("next_seq"))

    def limit_window(self) -> tuple[int, float]:
        return _effective(
            self.limit, self.window, self.get("server_max"), self.get("server_window_ms")
        )


async def headroom(session: AsyncSession, settings: Settings) -> dict[str, Headroom]:
    """Every known location's budget right now (read only), for `/sync-status`."""
    now = await rate_budget_repo.clock(session)
    out = {}
    for location_id, budget in (await rate_budget_repo.get_budgets(session)).items():
        limit, window = _effective(
            settings.ghl_rate_limit_max,
            settings.ghl_rate_limit_window_seconds,
            budget.server_max,
            budget.server_window_ms,
        )
        used = await rate_budget_repo.count_slots_in_window(session, location_id, now - window, now)
        out[location_id] = Headroom(
            limit=limit,
            window_seconds=window,
            used_in_window=used,
            paused_for_seconds=round(max(0.0, (budget.paused_until or 0.0) - now), 3),
            daily_remaining=budget.daily_remaining,
        )
    return out


def _effective(
    limit: int, window: float, server_max: int | None, server_window_ms: int | None
) -> tuple[int, float]:
    """Our configured budget, tightened (never loosened) by what GHL announced."""
    if server_max:
        limit = min(limit, server_max)
    if server_window_ms:
        window = max(window, server_window_ms / 1000)
    return max(1, limit), window


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None
