"""`wizesync sandbox` starts as a process, serves both fakes on one port and answers over real
HTTP (loopback only), including a hang that outlasts a client's timeout."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.sandbox.kit import PIT, Q
from tests.support.processes import Proc, free_port, wait_answering

pytestmark = pytest.mark.slow


@pytest.fixture
def sandbox_proc(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GHL_", "WIZEHIRE_"))}
    proc = Proc(
        "sandbox",
        [
            "sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--service-url",
            "",
            "--webhooks",
            "off",
        ],
        env,
        tmp_path,
    )
    yield proc, f"http://127.0.0.1:{port}"
    proc.stop()


async def test_sandbox_command_serves_both_fakes(sandbox_proc):
    proc, base = sandbox_proc
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        await wait_answering(proc, http)

        orders = await http.get("/ghl/payments/orders", headers=PIT, params=Q)
        assert orders.status_code == 200, orders.text
        assert orders.headers["x-ratelimit-max"] == "100"
        wizehire = await http.get("/wizehire/v1/orders", headers={"Authorization": "Bearer k"})
        assert wizehire.json() == {"data": [], "next_cursor": None}

        await http.post(
            "/_sandbox/faults",
            json={"path": "/ghl/payments/orders", "timeout": True, "hang_seconds": 30, "times": 1},
        )
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/ghl/payments/orders", headers=PIT, params=Q, timeout=0.5)
        after = await http.get("/ghl/payments/orders", headers=PIT, params=Q)
        assert after.status_code == 200
    assert "/ghl" in proc.output() and "GHL_API_URL=" in proc.output()
