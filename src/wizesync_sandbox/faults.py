"""Fault injection for both fakes: error rates, latency, forced 4xx/5xx and hangs, per path pattern.

A rule matches `method` and a glob over the full path (`/ghl/payments/*`, `/wizehire/v1/*`). The
first matching rule that still has `times` left applies with probability `rate`. Phase `before`
answers instead of the fake; phase `after` lets the fake do the work and then answers the error
(or hangs): the case where a client must look before it creates again.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import random
import secrets
from collections import deque
from http import HTTPStatus
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wizesync_sandbox.settings import SandboxConfig


class FaultRule(BaseModel):
    id: str = Field(default_factory=lambda: f"fault_{secrets.token_hex(4)}")
    path: str = "*"
    method: str = "*"
    status: int | None = Field(None, ge=400, le=599)
    rate: float = Field(1.0, ge=0, le=1)
    latency_ms: int = Field(0, ge=0)
    # Hang instead of answering (longer than any sane client timeout), then answer 504.
    timeout: bool = False
    hang_seconds: float = Field(120.0, gt=0)
    phase: Literal["before", "after"] = "before"
    times: int | None = Field(None, ge=1)
    hits: int = 0

    @model_validator(mode="after")
    def _does_something(self) -> FaultRule:
        if self.status is None and not self.timeout and not self.latency_ms:
            raise ValueError("a fault needs a status, timeout=true or latency_ms")
        return self

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        return fnmatch.fnmatchcase(path, self.path)


class FaultInjector:
    def __init__(self, config: SandboxConfig) -> None:
        self._config = config
        self.rules: list[FaultRule] = []
        self.applied: deque[dict[str, Any]] = deque(maxlen=500)
        # Reproducible on purpose (fault_seed), not a secret: a plain PRNG is right here.
        self._rng = random.Random(config.fault_seed)  # noqa: S311

    def reset(self) -> None:
        self.rules.clear()
        self.applied.clear()
        self._rng = random.Random(self._config.fault_seed)  # noqa: S311

    def add(self, rule: FaultRule) -> FaultRule:
        self.rules.append(rule)
        return rule

    def remove(self, rule_id: str) -> bool:
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rule_id]
        return len(self.rules) != before

    def pick(self, method: str, path: str) -> FaultRule | None:
        for rule in self.rules:
            if rule.matches(method, path):
                if rule.rate < 1 and self._rng.random() >= rule.rate:
                    return None
                rule.hits += 1
                self.applied.append({"rule": rule.id, "method": method, "path": path})
                return rule
        return None

    def error_response(self, path: str, status: int) -> tuple[dict[str, str], bytes]:
        reason = HTTPStatus(status).phrase
        headers = {"content-type": "application/json"}
        if path.startswith("/ghl"):
            body: dict[str, Any] = {
                "statusCode": status,
                "message": f"{reason} (sandbox fault)",
                "error": reason,
            }
            if status == 429:
                headers.update(self._limit_headers())
        else:
            body = {
                "error": reason.lower().replace(" ", "_"),
                "message": f"{reason} (sandbox fault)",
            }
        return headers, json.dumps(body).encode()

    def _limit_headers(self) -> dict[str, str]:
        c = self._config
        headers = {
            "X-RateLimit-Max": str(c.ghl_rate_limit_max),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Interval-Milliseconds": str(c.ghl_rate_limit_interval_ms),
            "X-RateLimit-Limit-Daily": str(c.ghl_daily_limit),
            "X-RateLimit-Daily-Remaining": str(c.ghl_daily_limit),
        }
        if c.ghl_retry_after:
            headers["Retry-After"] = str(max(1, c.ghl_rate_limit_interval_ms // 1000))
        return headers


class FaultMiddleware:
    """Pure ASGI, outermost: it must be able to answer without the app, or after it."""

    def __init__(
        self,
        app: ASGIApp,
        faults: FaultInjector,
        exempt: tuple[str, ...] = ("/_sandbox", "/health"),
    ) -> None:
        self.app = app
        self.faults = faults
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        rule = self.faults.pick(scope["method"], path)
        if rule is None:
            await self.app(scope, receive, send)
            return
        if rule.latency_ms:
            await asyncio.sleep(rule.latency_ms / 1000)
        if rule.status is None and not rule.timeout:
            await self.app(scope, receive, send)
            return
        kept: list[tuple[bytes, bytes]] = []
        if rule.phase == "after":

            async def discard(message: Message) -> None:
                # The app's answer is thrown away, but its rate-limit headers were true.
                if message["type"] == "http.response.start":
                    kept.extend(
                        (k, v)
                        for k, v in message.get("headers", [])
                        if k.lower().startswith(b"x-ratelimit")
                    )

            await self.app(scope, receive, discard)
        if rule.timeout:
            await asyncio.sleep(rule.hang_seconds)
            status = 504
        else:
            status = rule.status or 500
        headers, body = self.faults.error_response(path, status)
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        names = {k for k, _ in raw}
        raw += [(k, v) for k, v in kept if k not in names]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
