"""Slack: messages go out, are de-duplicated and rate-limited, and failures never raise."""

from __future__ import annotations

import httpx
import respx

from wizesync.notify.slack import Notice, SlackNotifier

URL = "https://hooks.slack.test/services/T000/B000/XXXX"


async def test_notice_is_posted_as_text():
    async with httpx.AsyncClient() as http, respx.mock:
        route = respx.post(URL).respond(200, text="ok")
        slack = SlackNotifier(http, URL)
        assert await slack.notify(Notice("Order wh_ord_1 is now paid", ("amount: 149.00 USD",)))
        assert route.call_count == 1
        text = route.calls[0].request.read().decode()
        assert "wh_ord_1" in text and "149.00" in text


async def test_same_key_is_sent_once_within_the_window():
    async with httpx.AsyncClient() as http, respx.mock:
        route = respx.post(URL).respond(200)
        slack = SlackNotifier(http, URL)
        for _ in range(3):
            await slack.notify(Notice("event 7 died", key="dead:7"))
        await slack.notify(Notice("event 8 died", key="dead:8"))
        assert route.call_count == 2


async def test_rate_limit_drops_the_excess_instead_of_flooding():
    async with httpx.AsyncClient() as http, respx.mock:
        route = respx.post(URL).respond(200)
        slack = SlackNotifier(http, URL, per_minute=5)
        results = [await slack.notify(Notice(f"n{i}")) for i in range(8)]
        assert route.call_count == 5
        assert results.count(False) == 3


async def test_slack_failures_are_swallowed():
    async with httpx.AsyncClient() as http, respx.mock:
        respx.post(URL).mock(side_effect=httpx.ConnectError("down"))
        slack = SlackNotifier(http, URL)
        assert await slack.notify(Notice("x")) is False
        respx.post(URL).respond(500)
        assert await slack.notify(Notice("y")) is False


async def test_without_a_url_nothing_is_sent():
    async with httpx.AsyncClient() as http, respx.mock(assert_all_called=False) as mock:
        route = mock.post(URL).respond(200)
        slack = SlackNotifier(http, None)
        assert slack.enabled is False
        assert await slack.notify(Notice("x")) is False
        assert route.call_count == 0
