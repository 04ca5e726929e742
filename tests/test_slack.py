"""Slack: one post per notice, Slack's answer in words, the notice event's outcomes, and keys.

No database here: the durable path (queue in the flow's transaction, post from the inbox) is in
tests/test_slack_outbox.py and tests/flows/test_slack_notices.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from wizesync.db.inbox_repo import ClaimedEvent
from wizesync.inbox.context import PermanentFailure, RetryLater
from wizesync.notify import slack as slack_module
from wizesync.notify.outbox import (
    alert_notice,
    dead_event_notice,
    notice_event_id,
    notice_from_payload,
    notice_payload,
    post_notice,
)
from wizesync.notify.slack import Notice, SlackNotifier, SlackRefused, SlackUnavailable

URL = "https://hooks.slack.test/services/T000/B000/XXXX"


def _sent(outcome: str) -> float:
    return slack_module.SENT.labels(outcome)._value.get()


async def test_notice_is_posted_as_text():
    async with httpx.AsyncClient() as http, respx.mock:
        route = respx.post(URL).respond(200, text="ok")
        before = _sent("sent")
        await SlackNotifier(http, URL, min_interval=0).post(
            Notice("Order wh_ord_1 is now paid", ("amount: 149.00 USD",))
        )
        assert route.call_count == 1
        text = route.calls[0].request.read().decode()
        assert "wh_ord_1" in text and "149.00" in text
        assert _sent("sent") == before + 1


async def test_outage_and_5xx_are_unavailable_so_the_event_retries():
    async with httpx.AsyncClient() as http, respx.mock:
        slack = SlackNotifier(http, URL, min_interval=0)
        respx.post(URL).mock(side_effect=httpx.ConnectError("down"))
        with pytest.raises(SlackUnavailable, match="unreachable"):
            await slack.post(Notice("x"))
        respx.post(URL).respond(500, text="oops")
        with pytest.raises(SlackUnavailable, match="500 Internal Server Error") as caught:
            await slack.post(Notice("y"))
        assert caught.value.retry_after is None


async def test_429_carries_slacks_retry_after():
    async with httpx.AsyncClient() as http, respx.mock:
        respx.post(URL).respond(429, headers={"Retry-After": "37"}, text="rate_limited")
        before = _sent("rate_limited")
        with pytest.raises(SlackUnavailable, match="429") as caught:
            await SlackNotifier(http, URL, min_interval=0).post(Notice("x"))
        assert caught.value.retry_after == 37.0
        assert _sent("rate_limited") == before + 1


async def test_a_revoked_webhook_is_refused_in_words():
    async with httpx.AsyncClient() as http, respx.mock:
        respx.post(URL).respond(404, text="no_service")
        with pytest.raises(SlackRefused) as caught:
            await SlackNotifier(http, URL, min_interval=0).post(Notice("x"))
        message = str(caught.value)
        assert "404 Not Found" in message and "no_service" in message
        assert "SLACK_WEBHOOK_URL" in message


async def test_posts_of_one_process_are_spaced(monkeypatch: pytest.MonkeyPatch):
    waits: list[float] = []

    async def record_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(slack_module.asyncio, "sleep", record_sleep)
    async with httpx.AsyncClient() as http, respx.mock:
        respx.post(URL).respond(200)
        slack = SlackNotifier(http, URL, min_interval=1.0)
        for i in range(3):
            await slack.post(Notice(f"n{i}"))
    # The first goes at once; the next two wait for (most of) the second since the last post.
    assert len(waits) == 2 and all(0 < w <= 1.0 for w in waits)


async def test_without_a_url_nothing_is_sent():
    async with httpx.AsyncClient() as http, respx.mock(assert_all_called=False) as mock:
        route = mock.post(URL).respond(200)
        slack = SlackNotifier(http, None)
        assert slack.enabled is False
        with pytest.raises(SlackRefused):
            await slack.post(Notice("x"))
        assert route.call_count == 0


# --- the internal slack.notify event ------------------------------------------------------------


@dataclass
class _Services:
    slack: Any


@dataclass
class _Ctx:
    event: ClaimedEvent
    services: Any


def _notice_event(notice: Notice) -> ClaimedEvent:
    return ClaimedEvent(
        id=1,
        source="internal",
        event_id=notice_event_id(notice),
        type="slack.notify",
        ordering_key="slack",
        attempt=1,
        payload=notice_payload(notice),
        received_at=datetime.now(UTC),
    )


async def _run_handler(status: int, **response: Any) -> None:
    notice = Notice("Refund needs a human", ("Amount: 10.00 USD",), key="refund-manual:r1")
    async with httpx.AsyncClient() as http, respx.mock:
        respx.post(URL).respond(status, **response)
        ctx = _Ctx(_notice_event(notice), _Services(SlackNotifier(http, URL, min_interval=0)))
        await post_notice(ctx)  # type: ignore[arg-type]


async def test_handler_maps_slacks_answers_to_the_workers_outcomes():
    await _run_handler(200)
    with pytest.raises(RetryLater) as retry:
        await _run_handler(429, headers={"Retry-After": "12"})
    assert retry.value.delay == 12.0
    with pytest.raises(RetryLater) as retry:
        await _run_handler(503)
    assert retry.value.delay is None  # the worker's backoff
    with pytest.raises(PermanentFailure, match="404 Not Found"):
        await _run_handler(404)


async def test_handler_without_slack_configured_is_dead_and_replayable():
    notice = Notice("x", key="k")
    async with httpx.AsyncClient() as http:
        ctx = _Ctx(_notice_event(notice), _Services(SlackNotifier(http, None)))
        with pytest.raises(PermanentFailure, match="SLACK_WEBHOOK_URL is not set"):
            await post_notice(ctx)  # type: ignore[arg-type]


def test_payload_round_trips_and_garbage_is_permanent():
    notice = Notice("t", ("a", "b"), key="k", severity="action")
    assert notice_from_payload(notice_payload(notice)) == notice
    with pytest.raises(PermanentFailure):
        notice_from_payload({"lines": []})


# --- keys ---------------------------------------------------------------------------------------


def test_event_id_is_the_key_and_long_keys_stay_distinct_and_short():
    assert notice_event_id(Notice("x", key="refund-manual:r1")) == "slack:refund-manual:r1"
    long_a = Notice("x", key="alert:" + "a" * 300 + "1")
    long_b = Notice("x", key="alert:" + "a" * 300 + "2")
    assert len(notice_event_id(long_a)) <= 200
    assert notice_event_id(long_a) != notice_event_id(long_b)
    # Without a key: the same words are one notice, other words another.
    assert notice_event_id(Notice("same")) == notice_event_id(Notice("same"))
    assert notice_event_id(Notice("same")) != notice_event_id(Notice("other"))


def test_a_death_is_told_once_and_again_after_a_replay_dies_again():
    event = ClaimedEvent(
        id=7,
        source="wizehire",
        event_id="e",
        type="order.created",
        ordering_key="k",
        attempt=3,
        payload={},
        received_at=datetime.now(UTC),
    )
    first = dead_event_notice(event, "unmapped SKU X\ntraceback ...")
    assert first.lines[0] == "reason: unmapped SKU X"
    assert "wizesync events replay 7" in first.text()
    assert first.key == dead_event_notice(event, "unmapped SKU X").key  # same death
    replayed = replace(event, attempt=4)
    assert dead_event_notice(replayed, "unmapped SKU X").key != first.key


def test_an_alert_pages_once_an_hour():
    event = ClaimedEvent(
        id=7,
        source="ghl",
        event_id="e",
        type="OrderCreate",
        ordering_key="k",
        attempt=1,
        payload={},
        received_at=datetime.now(UTC),
    )
    text = "A GHL installation needs re-authorisation"
    at_10 = alert_notice(text, event, datetime(2026, 11, 27, 10, 5, tzinfo=UTC))
    at_1059 = alert_notice(text, event, datetime(2026, 11, 27, 10, 59, tzinfo=UTC))
    at_11 = alert_notice(text, event, datetime(2026, 11, 27, 11, 0, tzinfo=UTC))
    at_10_other_event = alert_notice(
        text, replace(event, id=8), datetime(2026, 11, 27, 10, 30, tzinfo=UTC)
    )
    assert at_10.key == at_1059.key == at_10_other_event.key
    assert at_11.key != at_10.key
