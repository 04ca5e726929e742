"""The shared retry policy of the outbound clients (wizesync.retrying), on its own."""

from __future__ import annotations

import logging

import pytest
from tenacity import RetryCallState

from wizesync.retrying import retry_policy

LOGGER = logging.getLogger("wizesync.test_retrying")
MESSAGE = "test call failed; retrying"


class Flaky(Exception):
    def __init__(self, delay: float | None = None, status: int = 503) -> None:
        super().__init__("flaky")
        self.delay = delay
        self.status = status
        self.trace_id = "tr-1"


class Fatal(Exception):
    pass


class Waits:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def backoff(state: RetryCallState) -> float:
    return 100.0 + state.attempt_number  # recognisable, unlike any delay the errors carry


def policy(sleep: Waits, **overrides: object):
    options: dict[str, object] = {
        "max_attempts": 3,
        "backoff": backoff,
        "sleep": sleep,
        "retryable": lambda exc: isinstance(exc, Flaky),
        "delay_of": lambda exc: getattr(exc, "delay", None),
        "logger": LOGGER,
        "message": MESSAGE,
        "method": "GET",
        "path": "/things",
    }
    options.update(overrides)
    return retry_policy(**options)  # type: ignore[arg-type]


def failing(*errors: BaseException, answer: str = "ok"):
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return answer

    return attempt, calls


async def test_retries_up_to_max_attempts_then_reraises_the_last_error() -> None:
    sleep = Waits()
    last = Flaky()
    attempt, calls = failing(Flaky(), Flaky(), last, Flaky())
    with pytest.raises(Flaky) as caught:
        await policy(sleep)(attempt)
    assert caught.value is last
    assert len(calls) == 3 and len(sleep.waits) == 2


async def test_succeeds_after_retries() -> None:
    sleep = Waits()
    attempt, calls = failing(Flaky(), Flaky())
    assert await policy(sleep)(attempt) == "ok"
    assert len(calls) == 3


async def test_waits_the_errors_own_delay_else_the_backoff() -> None:
    sleep = Waits()
    attempt, _ = failing(Flaky(delay=7.0), Flaky(delay=None), Flaky(delay=0.0))
    assert await policy(sleep, max_attempts=4)(attempt) == "ok"
    # 7.0 from the error; None -> backoff for attempt 2; 0.0 is a delay, not "no delay".
    assert sleep.waits == [7.0, 102.0, 0.0]


async def test_a_non_retryable_error_is_raised_at_once() -> None:
    sleep = Waits()
    attempt, calls = failing(Fatal("no"))
    with pytest.raises(Fatal):
        await policy(sleep)(attempt)
    assert len(calls) == 1 and sleep.waits == []


async def test_the_predicate_decides_per_error() -> None:
    sleep = Waits()
    attempt, calls = failing(Flaky(delay=5.0), Flaky(delay=60.0))
    too_long = policy(
        sleep, retryable=lambda exc: isinstance(exc, Flaky) and (exc.delay or 0) <= 30
    )
    with pytest.raises(Flaky) as caught:
        await too_long(attempt)
    assert caught.value.delay == 60.0
    assert len(calls) == 2 and sleep.waits == [5.0]


async def test_warns_before_each_sleep_with_the_fields_in_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER.name)
    sleep = Waits()
    attempt, _ = failing(Flaky(delay=1.23456, status=429), Flaky(delay=2.0))
    retrying = policy(sleep, error_fields=("trace_id", "missing"), extra={"idempotency_key": "k-1"})
    assert await retrying(attempt) == "ok"
    records = [r for r in caplog.records if r.name == LOGGER.name]
    assert [r.getMessage() for r in records] == [MESSAGE, MESSAGE]
    assert all(r.levelno == logging.WARNING for r in records)
    standard = {*vars(logging.makeLogRecord({})), "message", "asctime"}
    fields = [{k: v for k, v in vars(r).items() if k not in standard} for r in records]
    assert [list(f.items()) for f in fields] == [
        [
            ("method", "GET"),
            ("path", "/things"),
            ("error", "Flaky"),
            ("status", 429),
            ("trace_id", "tr-1"),
            ("missing", None),
            ("attempt", 1),
            ("wait_s", 1.235),
            ("idempotency_key", "k-1"),
        ],
        [
            ("method", "GET"),
            ("path", "/things"),
            ("error", "Flaky"),
            ("status", 503),
            ("trace_id", "tr-1"),
            ("missing", None),
            ("attempt", 2),
            ("wait_s", 2.0),
            ("idempotency_key", "k-1"),
        ],
    ]
