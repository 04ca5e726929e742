"""Webhooks the sandbox sends to the service: GHL events signed with the sandbox Ed25519 key
(`X-GHL-Signature`) and Wizehire events signed with the Wizehire secret (Standard Webhooks).

Every event is recorded in the outbox whatever the mode: `send` delivers it in the background
(retrying non-2xx answers like GHL does, with backoff), `hold` keeps it until released through
the control plane (in any order, any number of times: duplicates and reordering on demand),
`off` records it as skipped. A GHL body is the object as it was when the event happened, plus
`type`, `timestamp` (stamped at the first delivery attempt, in real time) and `webhookId`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from wizesync.signing import ghl_headers, wizehire_headers
from wizesync_sandbox.clock import iso
from wizesync_sandbox.settings import SandboxConfig

log = logging.getLogger(__name__)
Source = Literal["ghl", "wizehire"]
PATHS = {"ghl": "/webhooks/ghl", "wizehire": "/webhooks/wizehire"}


@dataclass
class Delivery:
    id: str
    source: Source
    type: str
    payload: dict[str, Any]
    status: str = "pending"  # held | pending | delivered | failed | skipped
    body: bytes | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    created_at: str = field(default_factory=lambda: iso(datetime.now(UTC)))

    def public(self, *, with_body: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "status": self.status,
            "created_at": self.created_at,
            "attempts": list(self.attempts),
        }
        if with_body:
            out["body"] = json.loads(self.body) if self.body else self.payload
        return out


class Outbox:
    def __init__(self, config: SandboxConfig, http: httpx.AsyncClient | None = None) -> None:
        self._config = config
        self.http = http
        self.deliveries: dict[str, Delivery] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def reset(self) -> None:
        self.deliveries.clear()

    # --- recording -----------------------------------------------------------------------------
    def ghl(self, event_type: str, payload: dict[str, Any], *, mode: str | None = None) -> Delivery:
        """Record (and per mode send) a GHL webhook; the payload is copied as it is now."""
        delivery = Delivery(
            id=secrets.token_hex(12),
            source="ghl",
            type=event_type,
            payload={"type": event_type, **copy.deepcopy(payload)},
        )
        return self._route(delivery, mode)

    def ghl_event(self, event_type: str, payload: dict[str, Any]) -> None:
        """The ledger's hook: every state change GHL would announce."""
        self.ghl(event_type, payload)

    def wizehire(
        self, event: dict[str, Any], *, event_id: str | None = None, mode: str | None = None
    ) -> Delivery:
        delivery = Delivery(
            id=event_id or f"msg_{secrets.token_hex(12)}",
            source="wizehire",
            type=str(event.get("type", "")),
            payload=copy.deepcopy(event),
        )
        return self._route(delivery, mode)

    def _route(self, delivery: Delivery, mode: str | None) -> Delivery:
        mode = mode or self._config.webhooks
        self.deliveries[f"{delivery.source}:{delivery.id}"] = delivery
        if mode == "off":
            delivery.status = "skipped"
        elif mode == "hold":
            delivery.status = "held"
        else:
            self.schedule(delivery)
        return delivery

    def find(self, delivery_id: str) -> Delivery | None:
        for key in (f"ghl:{delivery_id}", f"wizehire:{delivery_id}"):
            if key in self.deliveries:
                return self.deliveries[key]
        return None

    def listing(
        self, *, source: str | None = None, status: str | None = None, type_: str | None = None
    ) -> list[Delivery]:
        return [
            d
            for d in self.deliveries.values()
            if (source is None or d.source == source)
            and (status is None or d.status == status)
            and (type_ is None or d.type == type_)
        ]

    # --- sending -------------------------------------------------------------------------------
    def schedule(self, delivery: Delivery) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a state change outside the server (e.g. a script): keep it
            delivery.status = "held"
            return
        delivery.status = "pending"
        task = loop.create_task(self.deliver(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for every background delivery in flight (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def deliver(self, delivery: Delivery, *, attempts: int | None = None) -> Delivery:
        """POST it to the service, retrying non-2xx answers with backoff. Returns when done."""
        delivery.status = "pending"
        total = attempts or self._config.webhook_max_attempts
        for attempt in range(1, total + 1):
            ok = await self._attempt(delivery)
            if ok:
                delivery.status = "delivered"
                return delivery
            if attempt < total:
                await asyncio.sleep(self._config.webhook_retry_seconds * 2 ** (attempt - 1))
        delivery.status = "failed"
        return delivery

    async def _attempt(self, delivery: Delivery) -> bool:
        record: dict[str, Any] = {"at": iso(datetime.now(UTC))}
        delivery.attempts.append(record)
        if not self._config.service_url:
            record["error"] = "no service URL configured"
            return False
        if self.http is None:
            record["error"] = "sandbox has no HTTP client (not started?)"
            return False
        body, headers = self._signed(delivery)
        url = self._config.service_url.rstrip("/") + PATHS[delivery.source]
        try:
            response = await self.http.post(
                url, content=body, headers=headers, timeout=self._config.webhook_timeout_seconds
            )
        except httpx.HTTPError as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
            log.info("sandbox webhook %s to %s failed: %s", delivery.type, url, exc)
            return False
        record["status_code"] = response.status_code
        record["response"] = response.text[:500]
        return 200 <= response.status_code < 300

    def _signed(self, delivery: Delivery) -> tuple[bytes, dict[str, str]]:
        if delivery.source == "ghl":
            if delivery.body is None:  # stamped once: a retry resends the very same bytes
                payload = {
                    **delivery.payload,
                    "timestamp": iso(datetime.now(UTC)),
                    "webhookId": delivery.id,
                }
                delivery.body = json.dumps(payload).encode()
            return delivery.body, ghl_headers(delivery.body)
        if delivery.body is None:
            delivery.body = json.dumps(delivery.payload).encode()
        # Standard Webhooks signs id.timestamp.body: a fresh timestamp per attempt, same id.
        return delivery.body, wizehire_headers(
            self._config.wizehire_secret, delivery.body, event_id=delivery.id, timestamp=time.time()
        )
