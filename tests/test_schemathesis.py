"""Schemathesis against the service's own OpenAPI: every operation, no server error.

A real `wizesync serve` (a free port on 127.0.0.1, the test database) is fuzzed by the
schemathesis CLI with the admin token, through all its phases (examples, coverage, fuzzing,
stateful), checking `not_a_server_error`. The service is configured completely (OAuth set, every
outbound URL a closed loopback port), so no 5xx is ever a legitimate answer and nothing leaves
the machine. A fixed seed always runs; in CI (`CI` set) a fresh seed runs too and is printed, so
a failure it finds can be replayed with `--seed`.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.support.processes import Spawner

FIXED_SEED = 20261204


def fresh_seed() -> int:
    """New each run, the same in every pytest-xdist process of one run (they must collect the
    same tests): derived from the run's id that xdist hands each of them."""
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_id is None:
        return secrets.randbelow(2**31)
    return int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:4]) % 2**31


SEEDS = [FIXED_SEED] + ([fresh_seed()] if os.environ.get("CI") else [])
MAX_EXAMPLES = 25  # per operation and phase: the run stays within a minute or two per database
ADMIN_TOKEN = "schemathesis-admin-" + secrets.token_hex(16)
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused


def _schemathesis() -> str:
    found = Path(sys.executable).with_name("schemathesis")
    if found.exists():
        return str(found)
    on_path = shutil.which("schemathesis") or shutil.which("st")
    if on_path is None:
        pytest.fail("schemathesis is not installed (pip install -e '.[dev]')")
    return on_path


@pytest.fixture
async def server(database_url: str, engine: object, tmp_path: Path):  # type: ignore[no-untyped-def]
    spawner = Spawner(tmp_path)
    try:
        _, base_url = await spawner.server(
            database_url,
            ADMIN_TOKEN=ADMIN_TOKEN,
            GHL_CLIENT_ID="schemathesis-client",
            GHL_CLIENT_SECRET="schemathesis-secret",
            GHL_REDIRECT_URI=f"{CLOSED}/oauth/ghl/callback",
            GHL_AUTHORIZE_URL=f"{CLOSED}/oauth/chooselocation",
            GHL_API_URL=f"{CLOSED}/ghl",
            WIZEHIRE_API_URL=f"{CLOSED}/wizehire",
            TOKEN_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        )
        yield base_url, spawner
    finally:
        spawner.close()


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed-{s}" for s in SEEDS])
def test_no_operation_answers_a_server_error(
    server: tuple[str, Spawner], tmp_path: Path, seed: int
) -> None:
    base_url, spawner = server
    report = tmp_path / "schemathesis"
    command = [
        _schemathesis(),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(seed),
        "--header",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        "--max-redirects",
        "0",  # the install's redirect points off the service
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--report",
        "junit",
        "--report-dir",
        str(report),
    ]
    print(f"schemathesis seed {seed}")
    run = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        check=False,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"},
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, (
        f"schemathesis (seed {seed}) found failures:\n{output[-12000:]}\n"
        f"--- service output ---\n{spawner.outputs()}"
    )
    assert "Server error" not in output
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert phase in output, output[-4000:]
