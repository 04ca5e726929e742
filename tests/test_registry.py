"""The handler registry: flows register per (source, event type); the worker looks them up."""

from __future__ import annotations

import pytest

from tests.conftest import make_settings
from tests.support.waiting import wait_for_status
from tests.support.worker_harness import add_event, running_worker
from wizesync.db.models import EventStatus
from wizesync.inbox.context import EventContext
from wizesync.inbox.registry import HandlerRegistry


async def _orders(ctx: EventContext) -> None:
    return None


async def _refunds(ctx: EventContext) -> None:
    return None


def test_decorator_registers_one_handler_for_several_types() -> None:
    registry = HandlerRegistry()

    @registry.on("wizehire", "order.created", "order.updated")
    async def orders(ctx: EventContext) -> None:
        return None

    registry.on("ghl", "InvoicePaid")(_refunds)

    assert registry.get("wizehire", "order.created") is orders
    assert registry.get("wizehire", "order.updated") is orders
    assert registry.get("ghl", "InvoicePaid") is _refunds
    assert ("wizehire", "order.updated") in registry
    assert registry.keys() == [
        ("ghl", "InvoicePaid"),
        ("wizehire", "order.created"),
        ("wizehire", "order.updated"),
    ]


def test_decorator_returns_the_handler_unchanged() -> None:
    registry = HandlerRegistry()
    assert registry.on("wizehire", "refund.requested")(_refunds) is _refunds


def test_second_handler_for_the_same_type_is_refused() -> None:
    registry = HandlerRegistry()
    registry.add("wizehire", "order.created", _orders)

    with pytest.raises(ValueError, match=r"wizehire order\.created is already registered"):
        registry.on("wizehire", "order.updated", "order.created")(_refunds)
    # The first registration stands.
    assert registry.get("wizehire", "order.created") is _orders


def test_registering_the_same_handler_again_is_harmless() -> None:
    """A flow module imported twice (e.g. by a plugin list) must not crash the start-up."""
    registry = HandlerRegistry()
    registry.add("ghl", "OrderCreate", _orders)
    registry.add("ghl", "OrderCreate", _orders)
    assert registry.get("ghl", "OrderCreate") is _orders


def test_same_type_from_another_source_is_a_different_handler() -> None:
    registry = HandlerRegistry()
    registry.add("wizehire", "order.created", _orders)
    registry.add("ghl", "order.created", _refunds)
    assert registry.get("wizehire", "order.created") is _orders
    assert registry.get("ghl", "order.created") is _refunds


def test_unknown_type_has_no_handler() -> None:
    registry = HandlerRegistry()
    registry.add("wizehire", "order.created", _orders)
    assert registry.get("wizehire", "order.deleted") is None
    assert registry.get("ghl", "order.created") is None
    assert ("wizehire", "order.deleted") not in registry


async def test_event_without_a_handler_goes_dead_saying_so(database_url, sessionmaker) -> None:
    registry = HandlerRegistry()
    registry.add("wizehire", "order.created", _orders)
    event_id = await add_event(sessionmaker, source="wizehire", type_="refund.requested")

    async with running_worker(make_settings(database_url), sessionmaker, registry):
        event = await wait_for_status(sessionmaker, event_id, EventStatus.DEAD)

    assert event.last_error == "no handler registered for wizehire refund.requested"
    assert event.attempts == 1  # no retries: waiting cannot make a handler appear
    assert event.handled_at is not None
    [attempt] = event.attempt_log
    assert attempt.outcome == EventStatus.DEAD
    assert "no handler registered" in (attempt.error or "")


def test_replace_puts_a_double_in_place_of_a_registered_handler():
    registry = HandlerRegistry()

    async def builtin(ctx):  # type: ignore[no-untyped-def]
        return None

    async def double(ctx):  # type: ignore[no-untyped-def]
        return None

    registry.add("ghl", "InvoiceCreate", builtin)
    registry.replace("ghl", "InvoiceCreate", double)
    assert registry.get("ghl", "InvoiceCreate") is double


def test_builtin_flows_handle_every_ghl_invoice_event_so_none_goes_dead():
    from wizesync.ghl.webhook_events import GHL_EVENT_MODELS
    from wizesync.inbox.registry import load_handlers

    registry = load_handlers([])
    missing = [t for t in GHL_EVENT_MODELS if ("ghl", t) not in registry]
    assert missing == []
