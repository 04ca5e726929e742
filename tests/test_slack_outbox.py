"""Durable Slack notices: queued in the caller's transaction, posted by the worker, retried on
Slack's terms, dead in words when the webhook is refused. Slack is an httpx MockTransport."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings
from tests.support.slack import (
    ScriptedSlack,
    notice_registry,
    notice_rows,
    services_for,
)
from tests.support.waiting import wait_for_status
from tests.support.worker_harness import running_worker
from wizesync.db.base import utcnow
from wizesync.db.models import EventStatus
from wizesync.notify import slack as slack_module
from wizesync.notify.outbox import queue_notice
from wizesync.notify.slack import Notice


async def queue(sessionmaker: Any, services: Any, notice: Notice) -> bool:
    async with sessionmaker.begin() as session:
        return await queue_notice(session, services, notice)


NOTICE = Notice(
    "Refund needs a human: 10.00 USD on Wizehire order wh_ord_1",
    ("Refund: wh_ref_1",),
    key="refund-manual:wh_ref_1",
    severity="action",
)


async def test_a_slack_outage_delays_the_message_and_it_goes_out_once(database_url, sessionmaker):
    slack = ScriptedSlack(script=[lambda: httpx.Response(500, text="oops")])
    services = services_for(slack)
    assert await queue(sessionmaker, services, NOTICE)
    (row,) = await notice_rows(sessionmaker)
    async with running_worker(
        make_settings(database_url), sessionmaker, notice_registry()
    ) as worker:
        worker.services = services
        done = await wait_for_status(sessionmaker, row.id, EventStatus.DONE)
    assert done.attempts == 2
    assert "500 Internal Server Error" in (done.attempt_log[0].error or "")
    assert slack.requests == 2
    (message,) = slack.accepted
    assert "wh_ord_1" in message and "wh_ref_1" in message


async def test_the_same_notice_queued_twice_is_one_row_and_one_message(database_url, sessionmaker):
    slack = ScriptedSlack()
    services = services_for(slack)
    before = slack_module.SENT.labels("deduplicated")._value.get()
    assert await queue(sessionmaker, services, NOTICE)
    assert await queue(sessionmaker, services, NOTICE)  # a re-run: Slack still gets it, once
    assert slack_module.SENT.labels("deduplicated")._value.get() == before + 1
    (row,) = await notice_rows(sessionmaker)
    async with running_worker(
        make_settings(database_url), sessionmaker, notice_registry()
    ) as worker:
        worker.services = services
        await wait_for_status(sessionmaker, row.id, EventStatus.DONE)
    assert len(slack.accepted) == 1


async def test_a_429_waits_for_slacks_retry_after(database_url, sessionmaker):
    slack = ScriptedSlack(
        script=[lambda: httpx.Response(429, headers={"Retry-After": "120"}, text="rate_limited")]
    )
    services = services_for(slack)
    await queue(sessionmaker, services, NOTICE)
    (row,) = await notice_rows(sessionmaker)
    before = utcnow()
    async with running_worker(
        make_settings(database_url), sessionmaker, notice_registry()
    ) as worker:
        worker.services = services
        waiting = await wait_for_status(sessionmaker, row.id, EventStatus.RETRY)
    after = utcnow()
    assert waiting.next_attempt_at is not None
    assert (
        before + timedelta(seconds=120) <= waiting.next_attempt_at <= after + timedelta(seconds=120)
    )
    assert "429" in (waiting.last_error or "")
    assert slack.accepted == []


async def test_a_refused_webhook_is_dead_in_words_and_not_told_about(
    database_url, sessionmaker, caplog: pytest.LogCaptureFixture
):
    slack = ScriptedSlack(script=[lambda: httpx.Response(404, text="no_service")] * 5)
    services = services_for(slack)
    await queue(sessionmaker, services, NOTICE)
    (row,) = await notice_rows(sessionmaker)
    with caplog.at_level(logging.ERROR, logger="wizesync.inbox.worker"):
        async with running_worker(
            make_settings(database_url), sessionmaker, notice_registry()
        ) as worker:
            worker.services = services
            dead = await wait_for_status(sessionmaker, row.id, EventStatus.DEAD)
    # stop() waited for the attempt, its notice included: still the one row.
    assert [r.id for r in await notice_rows(sessionmaker)] == [row.id]
    assert dead.attempts == 1
    assert "404 Not Found" in (dead.last_error or "")
    assert "no_service" in (dead.last_error or "")
    assert "SLACK_WEBHOOK_URL" in (dead.last_error or "")
    assert any("Slack notice could not be delivered" in r.getMessage() for r in caplog.records)


async def test_without_a_slack_webhook_nothing_is_queued(sessionmaker):
    services = services_for(ScriptedSlack(), url=None)
    assert await queue(sessionmaker, services, NOTICE) is False
    assert await notice_rows(sessionmaker) == []


async def test_a_notice_is_rolled_back_with_the_change_it_belongs_to(sessionmaker):
    services = services_for(ScriptedSlack())
    with pytest.raises(RuntimeError):
        async with sessionmaker.begin() as session:
            await queue_notice(session, services, NOTICE)
            raise RuntimeError("the state change failed")
    assert await notice_rows(sessionmaker) == []
