"""Which handler runs which event: flows register per (source, event type)."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wizesync.inbox.context import EventContext

Handler = Callable[["EventContext"], Awaitable[None]]


class HandlerRegistry:
    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str], Handler] = {}

    def add(self, source: str, event_type: str, handler: Handler) -> None:
        key = (source, event_type)
        existing = self._handlers.get(key)
        if existing is not None and existing is not handler:
            raise ValueError(f"a handler for {source} {event_type} is already registered")
        self._handlers[key] = handler

    def replace(self, source: str, event_type: str, handler: Handler) -> None:
        """Put `handler` in place of whatever handles the type: for plugins and test or
        benchmark doubles that stand in for a built-in flow."""
        self._handlers[(source, event_type)] = handler

    def on(self, source: str, *event_types: str) -> Callable[[Handler], Handler]:
        """Decorator: `@registry.on("wizehire", "order.created", "order.updated")`."""

        def register(handler: Handler) -> Handler:
            for event_type in event_types:
                self.add(source, event_type, handler)
            return handler

        return register

    def get(self, source: str, event_type: str) -> Handler | None:
        return self._handlers.get((source, event_type))

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._handlers

    def keys(self) -> list[tuple[str, str]]:
        return sorted(self._handlers)


# The registry the flows register on when their module is imported.
registry = HandlerRegistry()

# Modules whose import registers the service's own flows (filled in as flows land).
BUILTIN_HANDLER_MODULES: list[str] = [
    "wizesync.flows.install_events",
    "wizesync.flows.orders",
    "wizesync.flows.refunds.handler",
    "wizesync.flows.payments.handler",
    "wizesync.flows.payments.advance",
    "wizesync.notify.outbox",
    "wizesync.reconcile.heal",
]


def load_handlers(extra_modules: list[str]) -> HandlerRegistry:
    for name in [*BUILTIN_HANDLER_MODULES, *extra_modules]:
        importlib.import_module(name)
    return registry
