"""Fixtures: a fresh sandbox per test, seeded with the demo data, driven in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from wizesync_sandbox.core import Sandbox
from wizesync_sandbox.server import create_sandbox_app
from wizesync_sandbox.settings import SandboxConfig


@pytest.fixture
def sandbox() -> Sandbox:
    # Webhooks are held (recorded, not sent) unless a test wires a receiver.
    return Sandbox.build(SandboxConfig(webhooks="hold"))


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    app = create_sandbox_app(sandbox=sandbox, seed=True)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox"
    ) as http:
        yield http
