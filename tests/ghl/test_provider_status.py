"""Each location's white-label provider in `/sync-status`: read through the GHL client, cached,
and never a reason for `/sync-status` to be slow or to fail (GHL down or hanging: "unknown" with
the reason). The cache itself on a fake clock; the endpoint against the sandbox in-process."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings
from tests.ghl.kit import KEY_OLD, LOCATION, oauth_settings, seed_location
from tests.support.waiting import eventually
from wizesync.db import install_repo
from wizesync.db.base import utcnow
from wizesync.ghl import models as m
from wizesync.ghl.crypto import TokenCipher
from wizesync.ghl.errors import GhlServerError
from wizesync.ops.providers import ProviderDirectory
from wizesync_sandbox.defaults import DEFAULT_LOCATION_ID
from wizesync_sandbox.server import create_sandbox_app
from wizesync_sandbox.settings import SandboxConfig

WHITELABEL = "/ghl/payments/integrations/provider/whitelabel"
PIT = {"Authorization": "Bearer pit-status-token", "Version": "2021-07-28"}


def provider(name: str = "acme-pay") -> m.WhitelabelProvider:
    return m.WhitelabelProvider.model_validate(
        {
            "_id": "65cb47dda50f4f13ced4b870",
            "altId": LOCATION,
            "altType": "location",
            "title": "Acme",
            "route": name,
            "provider": "nmi",
            "description": "d",
            "imageUrl": "https://example.com/i.png",
        }
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Reader:
    """A scripted GHL: answers, failures, or holds until released; counts the reads."""

    def __init__(self) -> None:
        self.reads = 0
        self.answer: list[m.WhitelabelProvider] | Exception = [provider()]
        self.gate: asyncio.Event | None = None

    async def __call__(self, location_id: str) -> list[m.WhitelabelProvider]:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


# --- the cache ------------------------------------------------------------------------------------


async def test_providers_are_read_once_per_ttl() -> None:
    clock, read = Clock(), Reader()
    directory = ProviderDirectory(read, ttl=300, clock=clock)
    first = await directory.lookup([LOCATION])
    assert first[LOCATION]["status"] == "known"
    assert first[LOCATION]["providers"][0]["unique_name"] == "acme-pay"
    clock.now += 299
    await directory.lookup([LOCATION])
    assert read.reads == 1
    clock.now += 2
    read.answer = [provider("renamed-pay")]
    again = await directory.lookup([LOCATION])
    assert read.reads == 2
    assert again[LOCATION]["providers"][0]["unique_name"] == "renamed-pay"
    await directory.close()


async def test_a_failed_read_says_unknown_with_the_reason_and_is_retried_later() -> None:
    clock, read = Clock(), Reader()
    directory = ProviderDirectory(read, ttl=300, error_ttl=60, clock=clock)
    await directory.lookup([LOCATION])
    clock.now += 301
    read.answer = GhlServerError("Service Unavailable", status=503)
    down = (await directory.lookup([LOCATION]))[LOCATION]
    assert down["status"] == "unknown"
    assert "GHL failed with 503" in down["reason"]
    assert down["last_known"]["providers"][0]["unique_name"] == "acme-pay"
    clock.now += 59
    await directory.lookup([LOCATION])
    assert read.reads == 2  # an outage is not hammered
    clock.now += 2
    read.answer = [provider()]
    assert (await directory.lookup([LOCATION]))[LOCATION]["status"] == "known"
    assert read.reads == 3
    await directory.close()


async def test_a_slow_read_never_holds_the_answer_and_is_shared() -> None:
    clock, read = Clock(), Reader()
    read.gate = asyncio.Event()
    directory = ProviderDirectory(read, ttl=300, wait=0.05, clock=clock)
    first, second = await asyncio.gather(
        directory.lookup([LOCATION]), directory.lookup([LOCATION, LOCATION])
    )
    for answer in (first, second):
        assert answer[LOCATION]["status"] == "unknown"
        assert "still reading from GHL" in answer[LOCATION]["reason"]
    assert read.reads == 1  # one read per location at a time
    read.gate.set()
    await eventually(
        lambda: _status(directory, "known"), timeout=10, interval=0.01, what="the read to land"
    )
    # Expired and GHL slow again: the last answer, marked stale, not a wait.
    read.gate.clear()
    clock.now += 301
    stale = (await directory.lookup([LOCATION]))[LOCATION]
    assert stale["status"] == "known" and stale["stale"] is True
    assert read.reads == 2
    await directory.close()


async def _status(directory: ProviderDirectory, status: str) -> bool:
    return (await directory.lookup([LOCATION]))[LOCATION]["status"] == status


# --- /sync-status against the sandbox -------------------------------------------------------------


@pytest.fixture
def sandbox_app(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A seeded sandbox that the service's GHL client (built in the lifespan) talks to."""
    app = create_sandbox_app(SandboxConfig(webhooks="off", service_url=None), seed=True)

    def routed(settings: object, **_: object) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app))

    monkeypatch.setattr("wizesync.app.build_http_client", routed)
    return app


@pytest.fixture
def pit_settings(database_url: str, engine: object) -> Any:
    return make_settings(
        database_url,
        worker="off",
        ghl_api_url="http://sandbox/ghl",
        ghl_private_token="pit-status-token",
        ghl_location_id=DEFAULT_LOCATION_ID,
    )


async def sandbox_call(app: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox"
    ) as http:
        return await http.request(method, path, **kwargs)


async def entry_of(client: httpx.AsyncClient, location_id: str) -> dict[str, Any]:
    status = await client.get("/sync-status")
    assert status.status_code == 200, status.text
    [entry] = [e for e in status.json()["installations"] if e["location_id"] == location_id]
    return entry


async def test_sync_status_shows_the_locations_provider_and_caches_it(
    sandbox_app, pit_settings, client_factory
) -> None:
    registered = await sandbox_call(
        sandbox_app,
        "POST",
        WHITELABEL,
        headers=PIT,
        json={
            "altId": DEFAULT_LOCATION_ID,
            "altType": "location",
            "uniqueName": "acme-pay",
            "title": "Acme Pay",
            "provider": "authorize-net",
            "description": "Cards",
            "imageUrl": "https://example.com/acme.png",
        },
    )
    assert registered.status_code == 200, registered.text
    client = await client_factory(pit_settings)

    entry = await entry_of(client, DEFAULT_LOCATION_ID)
    shown = entry["whitelabel_provider"]
    assert shown["status"] == "known" and shown["read_at"]
    [p] = shown["providers"]
    assert (p["provider"], p["unique_name"], p["title"]) == (
        "authorize-net",
        "acme-pay",
        "Acme Pay",
    )
    assert "pit-status-token" not in str(entry)
    hits = sandbox_app.state.sandbox.limiter.snapshot()[DEFAULT_LOCATION_ID]["today"]
    await entry_of(client, DEFAULT_LOCATION_ID)
    assert sandbox_app.state.sandbox.limiter.snapshot()[DEFAULT_LOCATION_ID]["today"] == hits


async def test_sync_status_says_unknown_with_the_reason_when_ghl_fails(
    sandbox_app, pit_settings, client_factory
) -> None:
    fault = await sandbox_call(
        sandbox_app, "POST", "/_sandbox/faults", json={"path": WHITELABEL, "status": 503}
    )
    assert fault.status_code in (200, 201), fault.text
    client = await client_factory(pit_settings)

    async def unknown_with_reason() -> dict[str, Any] | None:
        shown = (await entry_of(client, DEFAULT_LOCATION_ID))["whitelabel_provider"]
        return shown if "503" in shown.get("reason", "") else None

    shown = await eventually(unknown_with_reason, timeout=30, what="the 503 in /sync-status")
    assert shown["status"] == "unknown"
    assert shown["reason"].startswith("GHL failed with 503")


async def test_sync_status_answers_while_ghl_hangs(
    sandbox_app, pit_settings, client_factory
) -> None:
    await sandbox_call(
        sandbox_app,
        "POST",
        "/_sandbox/faults",
        json={"path": WHITELABEL, "timeout": True, "hang_seconds": 60},
    )
    client = await client_factory(pit_settings)
    shown = (await entry_of(client, DEFAULT_LOCATION_ID))["whitelabel_provider"]
    assert shown["status"] == "unknown"
    assert "still reading from GHL" in shown["reason"]


async def test_locations_without_a_usable_token_are_not_read(
    database_url, sessionmaker, client_factory, monkeypatch
) -> None:
    cipher = TokenCipher([KEY_OLD])
    await seed_location(sessionmaker, cipher, access="at-1", refresh="rt-1")
    async with sessionmaker.begin() as session:
        await install_repo.record_uninstall(
            session, location_id=LOCATION, company_id=None, at=utcnow()
        )
    sent: list[httpx.Request] = []

    def recorder(settings: object, **_: object) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.MockTransport(
                lambda request: sent.append(request) or httpx.Response(500)
            )
        )

    monkeypatch.setattr("wizesync.app.build_http_client", recorder)
    client = await client_factory(oauth_settings(database_url, worker="off"))
    shown = (await entry_of(client, LOCATION))["whitelabel_provider"]
    assert shown["status"] == "unknown"
    assert "no usable token" in shown["reason"]
    assert sent == []
