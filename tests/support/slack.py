"""A Slack incoming webhook for tests (an httpx MockTransport), and the inbox rows of the Slack
notices the service queued (`internal`/`slack.notify`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select

from wizesync.db.models import InboxEvent
from wizesync.inbox.registry import HandlerRegistry
from wizesync.notify.outbox import NOTIFY_TYPE, post_notice
from wizesync.notify.slack import SlackNotifier

URL = "https://hooks.slack.test/services/T000/B000/XXXX"


@dataclass
class ScriptedSlack:
    """Answers from `script` in turn (then 200); keeps the text of every message it took."""

    script: list[Callable[[], httpx.Response]] = field(default_factory=list)
    requests: int = 0
    accepted: list[str] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.script:
            return self.script.pop(0)()
        self.accepted.append(json.loads(request.content)["text"])
        return httpx.Response(200, text="ok")


@dataclass
class FakeServices:
    slack: SlackNotifier


def services_for(slack: ScriptedSlack, url: str | None = URL) -> FakeServices:
    http = httpx.AsyncClient(transport=httpx.MockTransport(slack.handle))
    return FakeServices(SlackNotifier(http, url, min_interval=0))


def notice_registry() -> HandlerRegistry:
    registry = HandlerRegistry()
    registry.add("internal", NOTIFY_TYPE, post_notice)
    return registry


async def notice_rows(sessionmaker: Any) -> list[InboxEvent]:
    async with sessionmaker() as session:
        return list(
            (
                await session.execute(
                    select(InboxEvent)
                    .where(InboxEvent.source == "internal")
                    .order_by(InboxEvent.id)
                )
            ).scalars()
        )
