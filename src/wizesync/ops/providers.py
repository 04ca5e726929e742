"""White-label payment providers (`/payments/integrations/provider/whitelabel`): what a
registration must look like, GHL failures said in words, and each location's providers for
`/sync-status`, read through the client and cached.

`/sync-status` must stay fast and must not fail because GHL is slow or down: a location's
providers are read at most once per `ttl` (a failure is remembered for `error_ttl`, so a GHL
outage is not hammered), one read per location at a time, and a status request waits at most
`wait` seconds for reads in flight. Whatever is not known by then is "unknown" with the reason;
the read goes on in the background and the next request shows its result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wizesync.config import ConfigError, Settings
from wizesync.connection_problems import connection_problem
from wizesync.ghl import models as m
from wizesync.ghl.errors import (
    GhlError,
    GhlLocationInactive,
    GhlNeedsReauth,
    GhlNotFound,
    GhlNotInstalled,
    GhlRateLimited,
    GhlScopeError,
    GhlServerError,
    GhlTimeout,
    GhlValidationError,
)
from wizesync.ghl.limits import TokenProvider

log = logging.getLogger(__name__)

PROVIDERS = ("nmi", "authorize-net")
# The spec: "uniqueName must start and end with a character. Only lowercase characters and
# hyphens (-) are supported".
UNIQUE_NAME = re.compile(r"^[a-z](?:[a-z-]*[a-z])?$")
READ_SCOPE = "payments/integration.readonly"
WRITE_SCOPE = "payments/integration.write"

Reader = Callable[[str], Awaitable[list[m.WhitelabelProvider]]]


# --- registration --------------------------------------------------------------------------------


def registration_problems(
    *, provider: str, unique_name: str, title: str, description: str, image_url: str
) -> list[str]:
    """Everything GHL would refuse about a registration, in words, before asking it."""
    problems = []
    if provider not in PROVIDERS:
        problems.append(f"provider must be nmi or authorize-net, not {provider!r}")
    if not UNIQUE_NAME.match(unique_name):
        problems.append(
            f"unique name {unique_name!r} must start and end with a lowercase letter "
            "and hold only lowercase letters and hyphens (e.g. acme-payments)"
        )
    if not title.strip():
        problems.append("title must not be empty")
    if not description.strip():
        problems.append("description must not be empty")
    if not image_url.startswith("https://") or len(image_url) <= len("https://"):
        problems.append(f"image URL must be a public https:// URL, not {image_url!r}")
    return problems


def provider_view(p: m.WhitelabelProvider) -> dict[str, Any]:
    return {
        "id": p.id,
        "provider": p.provider,
        "unique_name": p.route,
        "title": p.title,
        "description": p.description,
        "image_url": p.image_url,
        "created_at": p.created_at.isoformat() if p.created_at else None,
    }


# --- GHL failures in words -----------------------------------------------------------------------


def ghl_problem(exc: BaseException, *, scope: str = READ_SCOPE) -> str:
    """What went wrong talking to GHL, in words an operator can act on."""
    said = f" (GHL: {exc})" if isinstance(exc, GhlError) else ""
    if isinstance(exc, GhlScopeError):
        return (
            f"the token is not allowed to use this endpoint: it needs the scope {scope}; "
            f"add it to the app or Private Integration Token and authorise again{said}"
        )
    if isinstance(exc, GhlNotInstalled):
        return exc.message
    if isinstance(exc, GhlNeedsReauth):
        return f"GHL does not accept the credentials: {exc.message}"
    if isinstance(exc, GhlLocationInactive):
        return f"GHL says the location is not active (paused sub-account){said}"
    if isinstance(exc, GhlRateLimited):
        return f"the location's GHL request budget is spent; try again in {exc.delay:.0f} s"
    if isinstance(exc, GhlTimeout):
        return f"GHL did not answer in time{said}"
    if isinstance(exc, GhlServerError):
        if exc.status is None:
            return f"cannot reach GHL: {connection_problem(exc)}"
        return f"GHL failed with {exc.status}{said}"
    if isinstance(exc, GhlNotFound):
        return f"GHL does not know it{said}"
    if isinstance(exc, GhlValidationError):
        return "GHL refused the request: " + "; ".join(exc.messages)
    if isinstance(exc, GhlError):
        return f"GHL refused the request{said}"
    if isinstance(exc, ConfigError):
        return str(exc)
    return f"unexpected error ({type(exc).__name__})"


# --- the cache behind /sync-status ---------------------------------------------------------------


@dataclass
class _Entry:
    expires: float
    view: dict[str, Any]


class ProviderDirectory:
    def __init__(
        self,
        read: Reader,
        *,
        ttl: float = 300.0,
        error_ttl: float = 60.0,
        wait: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._read = read
        self._ttl, self._error_ttl, self._wait = ttl, error_ttl, wait
        self._clock = clock
        self._on_close = on_close
        self._entries: dict[str, _Entry] = {}
        self._known: dict[str, dict[str, Any]] = {}  # the last successful read, per location
        self._reads: dict[str, asyncio.Task[None]] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient,
        *,
        tokens: TokenProvider | None = None,
        **options: Any,
    ) -> ProviderDirectory:
        """Its own client: few attempts and a short timeout (a status page must not wait on
        GHL's retries), the shared budget; the process's token provider when it has one. Not
        configured: every location says why."""
        from wizesync.ghl.factory import build_ghl_access

        try:
            access = build_ghl_access(
                settings,
                sessionmaker,
                http,
                tokens=tokens,
                max_attempts=2,
                timeout=httpx.Timeout(5.0),
                max_rate_limit_wait=5.0,
            )
        except ConfigError as exc:
            problem = exc

            async def unconfigured(location_id: str) -> list[m.WhitelabelProvider]:
                raise problem

            return cls(unconfigured, **options)

        async def read(location_id: str) -> list[m.WhitelabelProvider]:
            return (await access.client.list_whitelabel_providers(location_id)).items

        return cls(read, on_close=access.close, **options)

    async def lookup(self, location_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Each location's providers as `/sync-status` shows them; never raises."""
        wanted = list(dict.fromkeys(location_ids))
        now = self._clock()
        due = [
            loc for loc in wanted if loc not in self._entries or self._entries[loc].expires <= now
        ]
        reads = [self._start(loc) for loc in due]
        if reads:
            await asyncio.wait(reads, timeout=self._wait)
        return {loc: self._view(loc) for loc in wanted}

    def forget(self, location_id: str | None = None) -> None:
        """Read again next time (after a registration, or in tests)."""
        if location_id is None:
            self._entries.clear()
        else:
            self._entries.pop(location_id, None)

    async def close(self) -> None:
        for task in list(self._reads.values()):
            task.cancel()
        for task in list(self._reads.values()):
            with contextlib.suppress(BaseException):
                await task
        if self._on_close is not None:
            await self._on_close()

    # --- internals ----------------------------------------------------------------------------

    def _start(self, location_id: str) -> asyncio.Task[None]:
        task = self._reads.get(location_id)
        if task is None:  # one read per location at a time
            task = asyncio.create_task(self._refresh(location_id))
            self._reads[location_id] = task
            task.add_done_callback(lambda _: self._reads.pop(location_id, None))
        return task

    async def _refresh(self, location_id: str) -> None:
        read_at = _now()
        try:
            providers = await self._read(location_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = ghl_problem(exc)
            log.warning(
                "could not read the white-label providers",
                extra={"location_id": location_id, "error": type(exc).__name__},
            )
            view: dict[str, Any] = {"status": "unknown", "reason": reason, "checked_at": read_at}
            if location_id in self._known:
                view["last_known"] = self._known[location_id]
            self._entries[location_id] = _Entry(self._clock() + self._error_ttl, view)
            return
        known = {"providers": [provider_view(p) for p in providers], "read_at": read_at}
        self._known[location_id] = known
        self._entries[location_id] = _Entry(self._clock() + self._ttl, {"status": "known", **known})

    def _view(self, location_id: str) -> dict[str, Any]:
        entry = self._entries.get(location_id)
        if entry is not None:
            if entry.view["status"] == "known" and entry.expires <= self._clock():
                return {**entry.view, "stale": True}  # expired, its re-read not back yet
            return entry.view  # fresh, or the last failure (its reason still holds)
        view: dict[str, Any] = {
            "status": "unknown",
            "reason": f"still reading from GHL (no answer within {self._wait:g} s)",
            "checked_at": None,
        }
        if location_id in self._known:
            view["last_known"] = self._known[location_id]
        return view


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
