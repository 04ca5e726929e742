"""Helpers for the ops, admin, CLI and log tests: sample events and metric reads."""

from __future__ import annotations

import socket
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.signing import wizehire_request
from wizesync import samples

PROBLEM_JSON = "application/problem+json"
# Customer data put in sample events, so a test can show it never leaks where it must not.
CUSTOMER_EMAIL = "private.customer@example.com"


def order_event(event_type: str = "order.created", order_id: str | None = None) -> dict[str, Any]:
    event = samples.wizehire_event(event_type, order_id)
    event["data"]["order"]["customer"]["email"] = CUSTOMER_EMAIL
    return event


async def post_wizehire(
    client: httpx.AsyncClient, payload: dict[str, Any], **signing: Any
) -> httpx.Response:
    body, headers = wizehire_request(payload, **signing)
    return await client.post("/webhooks/wizehire", content=body, headers=headers)


def metric_samples(text: str, metric: str) -> list[Any]:
    """All samples named `metric` in a Prometheus text exposition."""
    return [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == metric
    ]


def metric_value(text: str, metric: str, **labels: str) -> float:
    """The sum of `metric`'s samples whose labels include `labels` (0 when there are none)."""
    return sum(
        s.value
        for s in metric_samples(text, metric)
        if all(s.labels.get(k) == v for k, v in labels.items())
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
