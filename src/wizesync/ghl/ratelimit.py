"""One request budget per GHL location, shared by every process of a deployment.

GHL allows 100 requests per 10 s per app and location. Every process reserves a numbered slot in
the database under the location's budget row lock; request `n` may start no earlier than
`window` after request `n - limit` (a sliding log: any `window`-long interval then holds at most
`limit` requests). Reservations are made ahead of time and the caller sleeps until its slot, so
waiting costs no database traffic and the budget is used to the full.

A slot due at once is recorded by the reservation's last statement, at the time it is written
(the request leaves right after the commit), and its time moves to when its answer came back,
so a request that reached GHL late still counts from when it got there.

GHL's headers tighten the budget: a lower `X-RateLimit-Max`, a longer
`X-RateLimit-Interval-Milliseconds`, an `X-RateLimit-Remaining` lower than our own ledger explains
(someone else spends the same app's budget for the location: the difference is booked as used),
the daily budget; a 429 pauses the location for `Retry-After` or the interval.

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
(nearly) no room or a tighter limit (`rate_schedule.tighter`), or at a 429, is released
(deleted with this process's next write for the location: it was never sent). At a busy window,
or a small limit, nothing is reserved ahead: one slot per transaction, so the budget is used to
the full.

The arithmetic of these rules is `ghl/rate_schedule.py` (pure); the SQL `db/rate_budget_repo.py`.
This module applies them: what it learned, the locks, the transactions.
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
from wizesync.ghl import rate_schedule as rules
from wizesync.ghl.errors import GhlRateLimited

log = logging.getLogger(__name__)

FLUSH_AFTER = 0.2

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
        self._lease = rules.lease(self._window)
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
        told = rules.RateHeaders.read(h)
        if self._ready.get(location_id) and rules.tighter(told, self._limit, self._window):
            # Reserved ahead on a ledger that did not know this yet: reserve afresh.
            self._release_ready(location_id)
        reservation = _RESERVATION.get()
        mine = reservation is not None and reservation[0] == location_id
        if mine:
            _RESERVATION.set(None)
        if not mine and status != 429 and not told.tell_anything:
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
        learned.server_max = told.server_max or learned.server_max
        learned.server_window_ms = told.interval_ms or learned.server_window_ms
        if told.daily is not None:
            learned.daily = (told.daily, answered_at)
        if status == 429:
            self._release_ready(location_id)  # reserved ahead, but GHL says stop
            delay = rules.pause_seconds(h, self._window, told.interval_ms)
            learned.pause_until = max(learned.pause_until or 0.0, answered_at + delay)
            log.warning(
                "GHL answered 429: pausing the location",
                extra={"location_id": location_id, "delay_seconds": delay},
            )
            await self.flush(location_id)  # every process must stop now, not later
            return
        if told.remaining is not None:
            # GHL counted at some moment between our send and its answer: compare with every
            # request of ours it may have counted then (over-counting errs towards no booking).
            counted_from = reservation[2] if mine and reservation else answered_at
            learned.remaining = (told.remaining, counted_from, answered_at)
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
            # At the end of the sequence (no reservation since), the numbers are reused.
            tail = rules.reusable_tail(view.next_seq, learned.released)
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
            foreign = rules.foreign_requests(limit, remaining, used)
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
        spent_for = rules.daily_wait(daily, daily_at, now)
        if spent_for is not None:
            if view.changes:
                await rate_budget_repo.update_budget(session, location_id, **view.changes)
            return GhlRateLimited(
                f"GHL daily request budget of location {location_id} is spent", delay=spent_for
            )
        seq = view.next_seq
        floor = (
            await rate_budget_repo.latest_slot_at(session, location_id, seq - limit)
            if seq >= limit
            else None
        )
        go = rules.go_time(now, view.get("last_go_at"), view.get("paused_until"), floor, window)
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
        if count > 1:  # counted until the end of their lease: see the module doc
            await rate_budget_repo.add_slots(
                session, location_id, seq + 1, [go] * (count - 1), counted_until=go + self._lease
            )
        view.set(next_seq=seq + count, last_go_at=go)
        if daily is not None:
            view.set(daily_remaining=daily - count)
        await rate_budget_repo.update_budget(session, location_id, **view.changes)
        below = rules.prune_below(seq, count, limit, self._limit)
        if below is not None:
            await rate_budget_repo.prune_slots(session, location_id, below)
        # Last, so a slot due now is recorded at the time it is written, not at `now`.
        await rate_budget_repo.add_slot_sent_now(session, location_id, seq, go)
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
        """`BATCH` when the window has room for that many more requests now
        (`rate_schedule.batch_probe`), else 1."""
        back = rules.batch_probe(seq, limit, daily)
        if back is None:
            return 1
        if back >= 0:
            counted = await rate_budget_repo.latest_slot_at(session, location_id, back)
            if rules.still_counted(counted, window, now):
                return 1
        return rules.BATCH


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
        return rules.effective(
            self.limit, self.window, self.get("server_max"), self.get("server_window_ms")
        )


async def headroom(session: AsyncSession, settings: Settings) -> dict[str, Headroom]:
    """Every known location's budget right now (read only), for `/sync-status`."""
    now = await rate_budget_repo.clock(session)
    out = {}
    for location_id, budget in (await rate_budget_repo.get_budgets(session)).items():
        limit, window = rules.effective(
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
