"""The sandbox's GHL webhook signing key. DEVELOPMENT ONLY: it is public, anyone can sign with it.

A service trusts its public half next to GHL's published key only while the in-process
development sandbox runs (`sandbox/dev.py`), so `wizesync trigger` and that sandbox can send
signed GHL events. Any other service, in any mode, trusts it only when an operator configures it
outright as `GHL_WEBHOOK_PUBLIC_KEY` (a separate `wizesync sandbox` process; production refuses
that), because a forged UNINSTALL signed with it would drop a location's tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wizesync.config import Settings

SANDBOX_GHL_PRIVATE_KEY_PEM = """-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIEHh+jhhjYrCqNxbyJgOk1xs5gSXvq52ptS1omKTUxJm
-----END PRIVATE KEY-----
"""

SANDBOX_GHL_PUBLIC_KEY_PEM = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAgGRoQCYdJmmJCdXbv8YPDp+aGwzgA4GLebQMONqd+GY=
-----END PUBLIC KEY-----
"""


def trusted_sandbox_keys(settings: Settings, sandbox_running: bool) -> list[str]:
    """The sandbox's public key when this service may trust it beside the configured one."""
    if settings.is_production or not sandbox_running:
        return []
    return [SANDBOX_GHL_PUBLIC_KEY_PEM]


def is_sandbox_key(pem: str) -> bool:
    """Whether `pem` is the sandbox's public key (whitespace aside)."""
    return "".join(pem.split()) == "".join(SANDBOX_GHL_PUBLIC_KEY_PEM.split())
