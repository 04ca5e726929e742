"""The budget's arithmetic on its own (`ghl/rate_schedule.py`): no database, no clock."""

from __future__ import annotations

from wizesync.ghl import rate_schedule as rules
from wizesync.ghl.rate_schedule import BATCH, RateHeaders


def test_ghl_can_tighten_the_budget_but_never_loosen_it() -> None:
    assert rules.effective(100, 10.0, 80, 12_000) == (80, 12.0)
    assert rules.effective(100, 10.0, 150, 5_000) == (100, 10.0)
    assert rules.effective(100, 10.0, None, None) == (100, 10.0)


def test_headers_are_read_leniently() -> None:
    told = RateHeaders.read(
        {
            "x-ratelimit-remaining": "97",
            "x-ratelimit-max": "100.0",
            "x-ratelimit-daily-remaining": "x",
        }
    )
    assert told == RateHeaders(remaining=97, server_max=100, interval_ms=None, daily=None)
    assert told.tell_anything
    assert not RateHeaders.read({}).tell_anything


def test_a_slot_waits_a_window_and_the_guard_after_the_request_limit_places_back() -> None:
    assert rules.go_time(100.0, 99.0, None, floor=95.0, window=10.0) == 95.0 + 10.0 + 0.1
    assert rules.go_time(100.0, 101.0, None, floor=None, window=10.0) == 101.0
    assert rules.go_time(100.0, None, 130.0, floor=None, window=10.0) == 130.0
    assert rules.go_time(100.0, None, None, floor=80.0, window=10.0) == 100.0


def test_a_spent_daily_budget_waits_an_hour_from_when_it_was_seen() -> None:
    assert rules.daily_wait(0, 1000.0, 1600.0) == 3000.0
    assert rules.daily_wait(0, 1000.0, 5000.0) is None
    assert rules.daily_wait(3, 1000.0, 1600.0) is None


def test_a_batch_is_reserved_only_with_room_and_a_large_enough_limit() -> None:
    assert rules.batch_probe(0, 100, None) < 0  # an empty window: no earlier slot matters
    assert rules.batch_probe(72, 100, None) == 0  # 72 + BATCH > 75: slot 0 decides
    assert rules.batch_probe(0, 20, None) is None  # BATCH > 20 // 8
    assert rules.batch_probe(0, 100, 4 * BATCH - 1) is None  # the day's budget nearly spent
    assert rules.still_counted(95.0, 10.0, 100.0)
    assert not rules.still_counted(89.0, 10.0, 100.0)
    assert not rules.still_counted(None, 10.0, 100.0)


def test_an_answer_with_less_room_than_assumed_is_tighter() -> None:
    roomy = RateHeaders(remaining=50, server_max=100, interval_ms=10_000, daily=1000)
    assert not rules.tighter(roomy, 100, 10.0)
    assert rules.tighter(RateHeaders(50, 80, None, None), 100, 10.0)
    assert rules.tighter(RateHeaders(50, None, 20_000, None), 100, 10.0)
    assert rules.tighter(RateHeaders(2 * BATCH - 1, None, None, None), 100, 10.0)
    assert rules.tighter(RateHeaders(None, None, None, 4 * BATCH - 1), 100, 10.0)


def test_a_429_pauses_for_retry_after_else_the_longer_window() -> None:
    assert rules.pause_seconds({"retry-after": "7"}, 10.0, None) == 7.0
    assert rules.pause_seconds({}, 10.0, 15_000) == 15.0
    assert rules.pause_seconds({}, 10.0, None) == 10.0


def test_only_requests_beyond_the_tolerance_are_booked_as_foreign() -> None:
    assert rules.foreign_requests(100, remaining=90, used=5) == 3  # 10 counted, 5 ours, 2 slack
    assert rules.foreign_requests(100, remaining=93, used=5) <= 0


def test_released_slots_at_the_end_give_their_numbers_back() -> None:
    assert rules.reusable_tail(10, {9, 8, 5}) == 8
    assert rules.reusable_tail(10, {5}) == 10


def test_old_slots_are_pruned_once_every_prune_interval() -> None:
    every = rules.PRUNE_EVERY
    assert rules.prune_below(every, 1, 100, 100) == every - 200
    assert rules.prune_below(every + 1, 1, 100, 100) is None
    assert rules.prune_below(0, BATCH, 100, 100) is None
